"""The host side of protocol v2 on any byte stream (``docs/protocol-v2.md``).

:func:`check_request` sorts 176 received bytes by the listener's
:class:`~fence_virt.protocol.v2.ProtocolMode`: a v2 request is verified with its timestamp
window, a C request as C does (c-suite-spec §2.4), and a request the mode does not serve is
refused with an :class:`~fence_virt.errors.AuthenticationError` that says why (the log line
a C agent's operator sees on the host). :func:`serve_v2` is :func:`fence_virt.listening.serve`
for a v2 request: the v2 handshake, then the answer sealed with the host's MAC. The backend
is asked nothing before the client's proof passed.
"""

from __future__ import annotations

import logging

from fence_virt.errors import AuthenticationError, RemoteError
from fence_virt.listening.answers import answer
from fence_virt.listening.session import Channel
from fence_virt.protocol import (
    FENCE_REQ_SIZE,
    FenceRequest,
    HashType,
    UnservableRequest,
    verify_request,
)
from fence_virt.protocol.v2 import (
    NONCE_SIZE,
    PROOF_SIZE,
    V2_HASHTYPE,
    ProtocolMode,
    V2Host,
    is_v2,
    request_digest,
    verify_v2,
)
from fence_virt.types import Dispatcher

__all__ = [
    "C_REFUSED",
    "check_request",
    "handshake_v2",
    "serve_v2",
    "v2_window_problem",
    "wants_v2",
]

#: the start of the refusal a v2-only listener logs for a C agent's request
C_REFUSED = "C-mode request refused: this listener requires protocol v2"


def v2_window_problem(v2_window: float, replay_window: float) -> str | None:
    """Why a listener's ``v2_window`` cannot go with its ``replay_window``, or None.

    A v2 request is let in while its timestamp is within ``v2_window`` seconds of the clock
    either way, so the replay memory must hold it for twice that: else a copy could come
    back after the memory forgot it and before its timestamp went stale.
    """
    if 2 * v2_window > replay_window:
        return f"v2_window {v2_window:g} must be at most half of replay_window {replay_window:g}"
    return None


def check_request(
    data: bytes,
    key: bytes,
    minimum: HashType,
    *,
    mode: ProtocolMode,
    window: float,
    now: float | None = None,
) -> FenceRequest:
    """Verify 176 received bytes as the listener's ``protocol`` mode demands.

    :param minimum: the weakest C signature accepted (``hash``); ``window``: seconds a v2
        timestamp may be off; ``now``: seconds since the epoch (tests).
    :raises fence_virt.errors.ProtocolError: a wrong length.
    :raises fence_virt.errors.AuthenticationError: not authentic, too old, or the kind of
        request the mode refuses (``protocol = "v2"`` and a C request: :data:`C_REFUSED`).
    :raises fence_virt.protocol.UnservableRequest: authentic, domain undecodable.
    """
    if mode.accepts_v2 and is_v2(data):
        return verify_v2(data, key, window=window, now=now)
    if not mode.accepts_c and len(data) == FENCE_REQ_SIZE:
        raise AuthenticationError(
            f'{C_REFUSED} (protocol = "v2"); a C agent sent hash type {data[1]}: '
            'configure the agent with hash=v2, or the listener with protocol = "both"'
        )
    return verify_request(data, key, minimum)


def wants_v2(request: FenceRequest | UnservableRequest) -> bool:
    """Whether a verified request is answered in v2 (its hash type says so)."""
    inner = request.request if isinstance(request, UnservableRequest) else request
    return inner.hashtype == V2_HASHTYPE


async def handshake_v2(channel: Channel, key: bytes, request: FenceRequest) -> V2Host:
    """Read Nc, prove ourselves bound to ``request`` and this connection, check the client.

    :raises fence_virt.errors.AuthenticationError: the client's proof is wrong (no key, a
        reflected host proof), or it hung up after our proof (it rejected it).
    :raises fence_virt.errors.RemoteError: the channel failed.
    """
    host = V2Host(key, request_digest(request))
    await channel.write(host.answer_hello(await channel.read_exactly(NONCE_SIZE)))
    try:
        proof = await channel.read_exactly(PROOF_SIZE)
    except RemoteError as exc:
        raise AuthenticationError(f"v2 client rejected our proof (key differs?): {exc}") from exc
    host.check_client(proof)
    return host


async def serve_v2(
    request: FenceRequest | UnservableRequest,
    channel: Channel,
    key: bytes,
    dispatcher: Dispatcher,
    *,
    requester: str,
    log: logging.Logger | None = None,
) -> bytes:
    """:func:`fence_virt.listening.serve` for a v2 request: handshake, answer, sealed reply.

    :returns: the payload answered (what C mode would have sent: a result byte or a list).
    :raises fence_virt.errors.RemoteError: a bad or silent peer; nothing was asked of the
        dispatcher if the handshake failed.
    """
    inner = request.request if isinstance(request, UnservableRequest) else request
    host = await handshake_v2(channel, key, inner)
    payload = await answer(request, requester, dispatcher, log=log)
    await channel.write(host.seal_result(payload))
    return payload
