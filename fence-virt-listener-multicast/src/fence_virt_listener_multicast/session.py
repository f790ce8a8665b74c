"""One request on its connect-back connection: the host's protocol logic, transport-free.

After the connect-back (c-suite-spec §1.2 step 5): answer the client's 64-byte challenge,
send ours and check the answer (:class:`fence_virt.protocol.AuthExchange`), then carry out
the operation through the dispatcher and write one result byte, or for a host list the
stream 0xFD, records, terminator, result byte (§2.6). The backend is not asked anything
before both proofs passed. The runner supplies the :class:`Channel` (sockets, timeouts);
tests supply in-memory ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from fence_virt import Dispatcher, Target
from fence_virt.errors import FenceVirtError, RemoteError
from fence_virt.protocol import AuthExchange, HashType, Operation, Response, encode_hostlist
from fence_virt_listener_multicast.datagram import Accepted

__all__ = ["Channel", "Credentials", "answer", "authenticate", "serve"]

log = logging.getLogger("fence_virt.listener.multicast")

#: operations a host carries out; 7 (metadata) and 8 (validate-all) are client-local
_FENCE_OPERATIONS = frozenset(
    {
        Operation.NULL,
        Operation.OFF,
        Operation.REBOOT,
        Operation.ON,
        Operation.STATUS,
        Operation.DEVSTATUS,
    }
)


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


async def authenticate(channel: Channel, credentials: Credentials) -> None:
    """The host side of the handshake; AuthenticationError if the client's proof is wrong."""
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
            raise RemoteError(f"client rejected our proof (auth or key differ?): {exc}") from exc
        exchange.receive_data(data)


async def answer(accepted: Accepted, dispatcher: Dispatcher) -> bytes:
    """Carry out the request; the bytes to send back. Never raises for a backend failure."""
    request = accepted.request
    operation = request.operation
    if operation is Operation.HOSTLIST:
        try:
            states = await dispatcher.hostlist(accepted.host)
        except FenceVirtError as exc:
            log.error("list for %s failed: %s", accepted.host, exc)
            return bytes([Response.FAIL])
        return encode_hostlist(states, Response.SUCCESS)
    if operation is None or operation not in _FENCE_OPERATIONS:
        log.warning("request %d from %s: no such operation", request.request, accepted.host)
        return bytes([Response.FAIL])
    target = Target(
        domain=request.domain,
        by_uuid=request.by_uuid,
        requester=accepted.host,
        seqno=request.seqno,
    )
    return bytes([await dispatcher.fence(operation, target)])


async def serve(
    accepted: Accepted, channel: Channel, credentials: Credentials, dispatcher: Dispatcher
) -> bytes:
    """Authenticate, execute, reply; returns what was sent. Raises RemoteError on a bad peer."""
    await authenticate(channel, credentials)
    reply = await answer(accepted, dispatcher)
    await channel.write(reply)
    return reply
