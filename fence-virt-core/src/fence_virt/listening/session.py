"""One fence_req on a byte stream: the host's protocol logic, transport-free.

The same on every stream transport (c-suite-spec §1.2 step 5, §1.3, §1.4): answer the
client's 64-byte challenge, send ours and check the answer
(:class:`fence_virt.protocol.AuthExchange`), then carry out the operation through the
dispatcher and write one result byte, or for a host list the stream 0xFD, records,
terminator, result byte (§2.6). The backend is not asked anything before both proofs
passed. Where the request came from is the listener's business: the multicast listener
decoded it from a datagram and connected back; a tcp or vsock listener reads it from the
accepted connection first (:func:`receive_request`). The runner supplies the
:class:`Channel` (sockets, timeouts); tests supply in-memory ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from fence_virt.errors import AuthenticationError, RemoteError
from fence_virt.listening.answers import answer
from fence_virt.protocol import (
    FENCE_REQ_SIZE,
    AuthExchange,
    FenceRequest,
    HashType,
    UnservableRequest,
    verify_request,
)
from fence_virt.types import Dispatcher

__all__ = ["Channel", "Credentials", "authenticate", "receive_request", "serve"]


class Channel(Protocol):
    """A byte stream to the client; implementations enforce their own timeouts."""

    async def read_exactly(self, size: int) -> bytes:
        """``size`` bytes, or a RemoteError (closed early, timed out)."""
        ...

    async def write(self, data: bytes) -> None:
        """Send all of ``data``, or a RemoteError."""
        ...


@dataclass(frozen=True)
class Credentials:
    """The challenge algorithm (configured, never sent) and the shared key."""

    auth: HashType
    key: bytes


async def receive_request(channel: Channel, key: bytes, minimum: HashType) -> FenceRequest:
    """Read one 176-byte fence_req from the stream and verify it (tcp, vsock: §1.3, §9.1 #7).

    The channel's timeout is the C listeners' 1 s for this read.

    :param minimum: the weakest signature accepted (the listener's ``hash``).
    :raises fence_virt.errors.RemoteError: the peer closed early or stayed silent;
        ProtocolError or AuthenticationError (subclasses) when the bytes do not verify.
    :raises fence_virt.protocol.UnservableRequest: authentic, but the domain does not
        decode: answer it (:func:`serve` does) instead of dropping it.
    """
    data = await channel.read_exactly(FENCE_REQ_SIZE)
    return verify_request(data, key, minimum)


async def authenticate(channel: Channel, credentials: Credentials) -> None:
    """The host side of the handshake (answer first, then challenge; §3.2).

    :raises fence_virt.errors.AuthenticationError: the client's proof is wrong.
    :raises fence_virt.errors.RemoteError: the channel failed; after our answer was sent, the
        message says the client probably rejected it (the C client hangs up then).
    """
    exchange = AuthExchange.for_host(credentials.auth, credentials.key)
    answered = False
    while not exchange.done:
        if outgoing := exchange.data_to_send():
            await channel.write(outgoing)
            answered = True
            continue
        try:
            data = await channel.read_exactly(exchange.bytes_needed)
        except RemoteError as exc:
            if not answered:
                raise
            # the C client hangs up when our answer to its challenge is wrong
            raise AuthenticationError(
                f"client rejected our proof (auth or key differ?): {exc}"
            ) from exc
        exchange.receive_data(data)


async def serve(
    request: FenceRequest | UnservableRequest,
    channel: Channel,
    credentials: Credentials,
    dispatcher: Dispatcher,
    *,
    requester: str,
    log: logging.Logger | None = None,
) -> bytes:
    """Authenticate, execute, reply: the whole exchange after the request is known.

    :param request: the verified request, or the :class:`~fence_virt.protocol.
        UnservableRequest` raised for an authentic one that cannot be decoded: after the
        handshake it is answered ``FAIL`` at once, without asking the dispatcher.
    :param requester: the identity static maps check: the connect-back IP (multicast), the
        peer IP (tcp), the peer CID in decimal (vsock).
    :param log: the listener's logger, for :func:`~fence_virt.listening.answer`'s warnings.
    :returns: the bytes sent back.
    :raises fence_virt.errors.RemoteError: a bad or silent peer; the backend was not asked
        anything if the handshake failed.
    """
    await authenticate(channel, credentials)
    reply = await answer(request, requester, dispatcher, log=log)
    await channel.write(reply)
    return reply
