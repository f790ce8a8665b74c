"""The client side of a stream session, for listener tests (what fence_xvm and fence_virt do).

:func:`client_session` answers the host's challenge/response over asyncio streams with
:class:`fence_virt.protocol.AuthExchange` and returns whatever the host sends after both
proofs -- one result byte, or a host-list stream -- so a test can decode it with the codec.
"""

from __future__ import annotations

import asyncio

from fence_virt.protocol import AuthExchange, HashType

__all__ = ["client_session"]


async def client_session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, auth: HashType, key: bytes
) -> bytes:
    """Prove the key to the host, check its proof, then read until it closes.

    :param auth: the challenge/response algorithm (both sides must agree; never sent).
    :param key: the shared key bytes.
    :returns: every byte the host sent after the exchange.
    :raises fence_virt.errors.AuthenticationError: the host's proof does not verify.
    :raises asyncio.IncompleteReadError: the host hung up during the exchange.

    The writer is closed on return or failure, as the C client exits after a failed proof.
    """
    exchange = AuthExchange.for_client(auth, key)
    try:
        while not exchange.done:
            if out := exchange.data_to_send():
                writer.write(out)
                await writer.drain()
            else:
                exchange.receive_data(await reader.readexactly(exchange.bytes_needed))
        return exchange.unused_data + await reader.read()
    finally:
        writer.close()
