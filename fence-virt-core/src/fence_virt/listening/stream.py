"""One accepted connection of a stream listener (tcp, vsock), transport-free.

The client connects, sends one signed 176-byte fence_req, then the challenge/response runs
and the host answers (c-suite-spec §1.3, §1.4, §9.1 #7). :class:`StreamSessions` holds what
the connections of one listener instance share (key, deadlines, duplicate filter, replay
memory, drop log) and serves each connection on any :class:`TimedChannel`;
:class:`fence_virt.listening.StreamServer` is the runner that accepts them.

Invariants, for every connection:

* the request must arrive within ``request_timeout`` (C: 1 s after the accept) and verify
  (exact size, hash at least ``hash``, signature; or, as ``protocol`` allows, a protocol v2
  request: tag and timestamp, :mod:`fence_virt.listening.v2`) before anything else happens;
  a v2 request is answered with the v2 handshake and a sealed result, never in C mode;
* the same signed bytes are served at most once for the replay window (the listener's
  ``replay_window``, default :data:`~fence_virt.listening.REPLAY_WINDOW` seconds, kept across
  restarts by a :class:`~fence_virt.listening.ReplayStore`): a stream client signs every
  request afresh and never resends it, so the signature is remembered as soon as it
  verified -- a captured request cannot be played back to harvest the host's challenge
  answers (§3.3), even if its original was never served. Refusals are logged once per
  requester and minute (:class:`~fence_virt.listening.SourceLog`);
* an authentic request whose domain does not decode (:class:`~fence_virt.protocol.
  UnservableRequest`: a Latin-1 name, no NUL) goes through the same replay memory,
  duplicate filter and handshake and is answered ``FAIL`` at once, without asking the
  dispatcher (C answers it too; a client left without an answer would wait its timeout);
* a request (operation, seqno, case-folded domain) from one requester runs at most once at
  a time and not again within 10 s of running (C's history, §5.8, which leaves out the
  requester: there, two guests whose requests share a seqno -- the microsecond of their
  clocks -- within 10 s shadow each other);
* the dispatcher is asked nothing before both proofs passed; once it was asked, the request
  counts as done even if the reply could not be delivered;
* every failure a peer can cause is one line through the :class:`DropLog` (rate-limited)
  and the end of the connection; nothing escapes :meth:`StreamSessions.handle`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from fence_virt.errors import RemoteError
from fence_virt.listening.answers import answer
from fence_virt.listening.droplog import DropLog, SourceLog
from fence_virt.listening.history import RequestHistory, request_key
from fence_virt.listening.replay import ReplayGuard
from fence_virt.listening.session import Channel, Credentials, authenticate
from fence_virt.listening.v2 import check_request, handshake_v2, wants_v2
from fence_virt.protocol import FENCE_REQ_SIZE, FenceRequest, HashType, UnservableRequest
from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, ProtocolMode, V2Host
from fence_virt.tracing import begin_request
from fence_virt.types import Dispatcher, DropKind

__all__ = [
    "IO_TIMEOUT",
    "REQUEST_TIMEOUT",
    "StreamPolicy",
    "StreamSessions",
    "TimedChannel",
]

#: seconds from the accept until the 176-byte request must be complete (C tcp.c, vsock.c)
REQUEST_TIMEOUT = 1.0
#: seconds for each step of the handshake and for the reply (C: 10)
IO_TIMEOUT = 10.0


class TimedChannel(Channel, Protocol):
    """A :class:`~fence_virt.listening.Channel` whose per-step deadline the session sets
    (:class:`~fence_virt.listening.SocketChannel` is one)."""

    #: seconds each read or write may take
    timeout: float


@dataclass(frozen=True)
class StreamPolicy:
    """What a stream listener instance demands of its clients."""

    #: the shared key (raw bytes of the key file)
    key: bytes
    #: the weakest request signature accepted (the listener's ``hash`` key)
    hash: HashType
    #: the challenge/response algorithm (``auth``); never sent, both sides must agree
    auth: HashType
    #: seconds from the accept to the complete request
    request_timeout: float = REQUEST_TIMEOUT
    #: seconds per handshake step and for the reply
    io_timeout: float = IO_TIMEOUT
    #: which requests are served: C mode, protocol v2, or both (``docs/protocol-v2.md``)
    protocol: ProtocolMode = ProtocolMode.C
    #: seconds a v2 request's timestamp may differ from our clock
    v2_window: float = DEFAULT_V2_WINDOW

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.auth, self.key)


class _Repeated(RemoteError):
    """A replayed or retransmitted request: refused, and reported as ``DropKind.REPLAY``."""


class _About:
    """Log argument naming a request; formatted only if the line is emitted."""

    __slots__ = ("_request", "_requester")

    def __init__(self, request: FenceRequest | UnservableRequest, requester: str) -> None:
        self._request = request
        self._requester = requester

    def __str__(self) -> str:
        if isinstance(self._request, UnservableRequest):
            request, domain = self._request.request, self._request.shown_domain
        else:
            request, domain = self._request, self._request.domain
        return (
            f"request {request.request} seqno {request.seqno} "
            f"domain {domain or '-'} from {self._requester}"
        )


class StreamSessions:
    """Serves the connections of one stream listener instance (see the module invariants).

    Safe for any number of concurrent :meth:`handle` calls on one event loop.
    """

    def __init__(
        self,
        policy: StreamPolicy,
        log: logging.Logger,
        *,
        drops: DropLog | None = None,
        history: RequestHistory | None = None,
        replays: ReplayGuard | None = None,
        replay_log: SourceLog | None = None,
    ) -> None:
        """``log``: the listener instance's logger; ``drops``: where refused connections
        are logged (default: a :class:`DropLog` on ``log`` without summary lines);
        ``history`` replaces the 10-second duplicate filter (tests); ``replays`` is the
        replay memory (default: a :class:`ReplayGuard` with the default window, in memory);
        ``replay_log`` logs replays once per requester (default: on ``drops``)."""
        self.policy = policy
        self.log = log
        self.drops = DropLog(log, what="connection") if drops is None else drops
        self.history = RequestHistory() if history is None else history
        self.replays = ReplayGuard(log=log) if replays is None else replays
        self.replay_log = (
            SourceLog(self.drops, what="replayed requests") if replay_log is None else replay_log
        )

    async def handle(
        self, channel: TimedChannel, requester: str, dispatcher: Dispatcher
    ) -> bytes | None:
        """Serve one connection to its end; the caller closes the channel afterwards.

        :param requester: the identity the listener vouches for, from the peer's address
            (numeric IP text for tcp, the CID in decimal for vsock); static maps check it.
        :returns: the bytes answered, or ``None`` when the connection was refused (logged).
        """
        try:
            return await self._serve(channel, requester, dispatcher)
        except _Replayed as exc:
            self.replay_log.refuse(requester, requester, str(exc))
            dispatcher.dropped(requester, DropKind.REPLAY, str(exc))
        except _Retransmitted as exc:
            self.drops.drop(requester, str(exc))
            dispatcher.dropped(requester, DropKind.REPLAY, str(exc))
        except RemoteError as exc:
            self.drops.drop(requester, str(exc))
            dispatcher.dropped(requester, DropKind.of(exc), str(exc))
        except Exception:  # a bug must cost one connection, never the listener
            self.log.exception("connection from %s: unexpected error", requester)
        return None

    async def _receive(self, channel: TimedChannel) -> FenceRequest | UnservableRequest:
        """The verified request, or the authentic one that cannot be decoded."""
        policy = self.policy
        channel.timeout = policy.request_timeout
        data = await channel.read_exactly(FENCE_REQ_SIZE)
        try:
            return check_request(
                data, policy.key, policy.hash, mode=policy.protocol, window=policy.v2_window
            )
        except UnservableRequest as problem:
            return problem

    async def _serve(self, channel: TimedChannel, requester: str, dispatcher: Dispatcher) -> bytes:
        policy = self.policy
        received = await self._receive(channel)
        request = received.request if isinstance(received, UnservableRequest) else received
        age = self.replays.age(request)
        if age is not None:
            raise _Replayed(f"replayed copy of a request received {age:.0f} s ago")
        self.replays.remember(request)
        claimed = (requester, *request_key(received))
        if not self.history.claim(claimed):
            raise _Retransmitted("retransmit of a request in progress or just answered")
        begin_request()  # this connection's task serves one request
        about = _About(received, requester)
        self.log.debug("%s: accepted", about)
        channel.timeout = policy.io_timeout
        sealer: V2Host | None = None
        try:
            if wants_v2(received):
                sealer = await handshake_v2(channel, policy.key, request)
            else:
                await authenticate(channel, policy.credentials)
        except BaseException:
            self.history.release(claimed)  # nothing was done: the client may try again
            raise
        try:
            reply = await answer(received, requester, dispatcher, log=self.log)
            try:
                await channel.write(reply if sealer is None else sealer.seal_result(reply))
            except RemoteError as exc:
                lost = f"{about}: carried out (answer {reply[0]}), but the answer was lost: {exc}"
                raise RemoteError(lost) from exc
        finally:
            self.history.complete(claimed)  # the dispatcher was asked: never run it twice
        self.log.debug("%s: answered %d", about, reply[0])
        return reply


class _Replayed(RemoteError):
    """A copy of a request whose signature the replay memory holds."""


class _Retransmitted(RemoteError):
    """The same request again while it runs or just after its answer (reported as
    ``DropKind.REPLAY`` too)."""
