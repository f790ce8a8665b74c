"""The runner: receive datagrams, admit them, run each request in its own task.

Invariants:

* nothing a peer sends escapes a task or the datagram callback: every failure is one log
  line and the listener keeps serving;
* a request (operation, seqno, case-folded domain) runs at most once at a time and is not
  repeated within 10 s of being answered (:class:`fence_virt.listening.RequestHistory`: claimed
  on arrival, completed once connected back, released when no connect-back succeeded);
* while the connect-back of a request is pending, copies carrying *another* address (a guest
  sends one per local address) queue behind it and are tried in turn if it fails, as the
  single-threaded C host would try them;
* the signature of every datagram that verified -- every copy of every request, however
  many addresses the guest has, served or not -- is refused for ``replay_window`` seconds
  (:class:`fence_virt.listening.ReplayGuard`: no per-request limit; memory bounded by its
  capacity) and kept across restarts in ``replay_state``
  (:class:`fence_virt.listening.ReplayStore`); a guest's retransmits are freshly signed,
  so they are never mistaken for replays. Replays are logged once per sending IP and
  minute (:class:`fence_virt.listening.SourceLog`);
* an authentic request whose domain does not decode is connected back to and answered
  ``FAIL``, with one log line, without asking the backend (as C answers it);
* a request the backend keeps silent about (:meth:`fence_virt.Dispatcher.should_answer`: the
  libvirt backend's ``unknown_vm = "silent"`` for a VM it does not have) is not connected
  back to, so the host of the group that has the VM answers;
* with ``local_guests_only``, a copy whose connect-back address is no running domain's
  (:class:`LocalGuests`) is not connected back to: the host stays silent, so a host that
  runs the guest answers;
* at most ``max_requests`` requests are in progress, and at most ``max_requests_per_source``
  for one connect-back address (the requester, inside the signed request: a forged UDP
  source cannot use up another guest's share); further datagrams are dropped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from fence_virt import CheckContext, Dispatcher, DropKind, Finding, Target
from fence_virt.errors import FenceVirtError, LocalError, RemoteError
from fence_virt.listening import (
    LISTENER_LOGGER_PREFIX,
    Credentials,
    DropLog,
    HistoryKey,
    ReplayGuard,
    ReplayStore,
    RequestHistory,
    SocketChannel,
    SourceLog,
    serve,
)
from fence_virt.listening.v2 import serve_v2
from fence_virt.tracing import request_context
from fence_virt_listener_multicast.datagram import Accepted, check_datagram
from fence_virt_listener_multicast.diagnosis import diagnose
from fence_virt_listener_multicast.localguests import LocalGuests
from fence_virt_listener_multicast.settings import MulticastSettings
from fence_virt_listener_multicast.sockets import connect_back, open_group_socket

__all__ = ["MulticastListener"]


@dataclass
class _Request:
    """A request in progress and the addresses its copies came with."""

    #: the copy that started it, named in log lines
    first: Accepted
    #: copies with addresses still to try for the connect-back (each address once: at most
    #: one per address the guest has)
    candidates: list[Accepted]
    connected: bool = False

    def add_copy(self, accepted: Accepted) -> None:
        if not self.connected and all(
            (c.host, c.port) != (accepted.host, accepted.port) for c in self.candidates
        ):
            self.candidates.append(accepted)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, listener: MulticastListener) -> None:
        self._listener = listener
        self.closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        sender = _sender(addr)
        try:
            self._listener.datagram_received(data, sender)
        except Exception:  # a bug must not stop the socket: log it, keep receiving
            self._listener.log.exception("datagram from %s: unexpected error", sender)

    def error_received(self, exc: Exception) -> None:
        self._listener.log.warning("UDP socket error: %s", exc)


def _sender(addr: tuple[str | object, ...]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _sender_ip(sender: str) -> str:
    """The IP of a ``_sender`` text: what counts as one source of replays."""
    return sender.rpartition(":")[0].strip("[]") or sender


class _About:
    """Log argument naming a request; formatted only if the line is emitted."""

    __slots__ = ("_accepted",)

    def __init__(self, accepted: Accepted) -> None:
        self._accepted = accepted

    def __str__(self) -> str:
        accepted = self._accepted
        request, host = accepted.request, accepted.host
        shown = request.domain if accepted.unservable is None else accepted.unservable.shown_domain
        domain = shown or "-"
        return f"request {request.request} seqno {request.seqno} domain {domain} from {host}"


class MulticastListener:
    """:class:`fence_virt.Listener` for the C ``fence_xvm`` multicast protocol."""

    def __init__(
        self, settings: MulticastSettings, key: bytes, history: RequestHistory | None = None
    ) -> None:
        """``history`` replaces the 10-second duplicate filter (tests)."""
        self._settings = settings
        self.log = logging.getLogger(LISTENER_LOGGER_PREFIX + settings.name)
        self._credentials = Credentials(settings.auth, key)
        self._history = RequestHistory() if history is None else history
        self._replays = ReplayGuard(settings.replay.window, log=self.log)
        self._store: ReplayStore | None = None
        self._drops = DropLog(self.log, what="datagram")
        self._replay_log = SourceLog(self._drops, what="replayed copies")
        self._requests: dict[HistoryKey, _Request] = {}
        #: requests in progress per connect-back address
        self._per_source: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._receiver: _Receiver | None = None
        self._dispatcher: Dispatcher | None = None
        self._local = LocalGuests(settings.local_guests) if settings.local_guests else None

    def describe(self) -> str:
        return f"{self._settings.describe()} ({self._settings.family.value})"

    def diagnose(self, context: CheckContext) -> list[Finding]:
        """``fence_virtd --check`` (:class:`fence_virt.Diagnosable`): key, route, socket."""
        return diagnose(self._settings, self._credentials.key, context)

    async def start(self, dispatcher: Dispatcher) -> None:
        if self._transport is not None:
            raise LocalError("multicast listener started twice")
        sock = open_group_socket(self._settings)
        self._dispatcher = dispatcher
        loop = asyncio.get_running_loop()
        self._drops = DropLog(
            self.log, schedule=loop.call_later, what="datagram", report=dispatcher.dropped
        )
        self._replay_log = SourceLog(self._drops, what="replayed copies", schedule=loop.call_later)
        state_file = self._settings.replay.state_file
        if state_file is not None and self._store is None:
            self._store = ReplayStore(self._replays, state_file, self.log)
            self._store.open()
        try:
            self._transport, self._receiver = await loop.create_datagram_endpoint(
                lambda: _Receiver(self), sock=sock
            )
        except BaseException:
            await self._close_store()
            raise
        self.log.info("listening on %s", self.describe())

    async def stop(self) -> None:
        if self._transport is not None and self._receiver is not None:
            self._transport.close()
            await self._receiver.closed
            self._transport = self._receiver = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._replay_log.flush()
        await self._close_store()

    async def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    @property
    def in_progress(self) -> int:
        return len(self._tasks)

    def datagram_received(self, data: bytes, sender: str) -> None:
        """Check one datagram and start its request, or drop it with one log line."""
        try:
            accepted = check_datagram(
                data,
                self._credentials.key,
                self._settings.hash,
                protocol=self._settings.protocol,
                v2_window=self._settings.v2_window,
                serve_swapped=self._settings.serve_swapped,
            )
        except RemoteError as exc:
            self._drops.drop(sender, str(exc), DropKind.of(exc))
            return
        age = self._replays.age(accepted.request)
        if age is not None:
            reason = f"replayed copy of a request received {age:.0f} s ago"
            self._replay_log.refuse(_sender_ip(sender), sender, reason, DropKind.REPLAY)
            return
        self._replays.remember(accepted.request)
        key = accepted.history_key
        if not self._history.claim(key):
            self.log.debug(
                "%s: retransmit, dropped (in progress or just answered)", _About(accepted)
            )
            if (running := self._requests.get(key)) is not None:
                running.add_copy(accepted)
            return
        if len(self._tasks) >= self._settings.max_requests:
            self._history.release(key)
            self._drops.drop(
                sender,
                f"{len(self._tasks)} requests in progress (max_requests)",
                DropKind.OVERLOAD,
            )
            return
        if self._per_source.get(accepted.host, 0) >= self._settings.max_requests_per_source:
            self._history.release(key)
            self._drops.drop(
                sender,
                f"{self._per_source[accepted.host]} requests to {accepted.host} in progress"
                " (max_requests_per_source)",
                DropKind.OVERLOAD,
            )
            return
        self._per_source[accepted.host] = self._per_source.get(accepted.host, 0) + 1
        # the request's task, and this line, carry a request id of their own
        context = request_context()
        context.run(self.log.debug, "%s: accepted (UDP from %s)", _About(accepted), sender)
        if accepted.swapped:
            context.run(
                self.log.info,
                "%s: byte-swapped request from a big-endian client: port, seqno and family "
                "read big-endian, served (byte_swapped = serve)",
                _About(accepted),
            )
        self._requests[key] = _Request(accepted, [accepted])
        task = asyncio.get_running_loop().create_task(self._run(key), context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: HistoryKey) -> None:
        request = self._requests[key]
        connected = None
        silent = False
        try:
            silent = not await self._answers(request.first)
            if not silent:
                connected = await self._connect(request)
            if connected is not None:
                await self._serve(*connected)
        except Exception:
            self.log.exception("%s: unexpected error", _About(request.first))
        finally:
            del self._requests[key]
            self._leave(request.first.host)
            if connected is None and not silent:
                self._history.release(key)
            else:
                self._history.complete(key)  # silent: its retransmits too, for 10 s

    async def _answers(self, accepted: Accepted) -> bool:
        """Whether the backend lets this host answer (:meth:`fence_virt.Dispatcher.should_answer`:
        ``unknown_vm = "silent"`` and the VM is not here means no connect-back at all)."""
        assert self._dispatcher is not None
        if accepted.unservable is not None:
            return True
        request = accepted.request
        operation = request.operation
        if operation is None:
            return True
        target = Target(
            domain=request.domain,
            by_uuid=request.by_uuid,
            requester=accepted.host,
            seqno=request.seqno,
        )
        return await self._dispatcher.should_answer(operation, target)

    def _leave(self, host: str) -> None:
        left = self._per_source.pop(host) - 1
        if left:
            self._per_source[host] = left

    async def _connect(self, request: _Request) -> tuple[Accepted, SocketChannel] | None:
        """Try each address the request came with, in arrival order; None if none answers."""
        settings = self._settings
        while request.candidates:
            accepted = request.candidates.pop(0)
            if not await self._runs_here(accepted):
                continue
            try:
                channel = await connect_back(
                    accepted.host,
                    accepted.port,
                    timeout=settings.connect_timeout,
                    io_timeout=settings.io_timeout,
                )
            except OSError as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or exc
                self.log.warning(
                    "%s: cannot connect back to port %d: %s",
                    _About(accepted),
                    accepted.port,
                    reason,
                )
                continue
            request.connected = True
            return accepted, channel
        return None

    async def _runs_here(self, accepted: Accepted) -> bool:
        """``local_guests_only``: whether the connect-back address is a local domain's."""
        if self._local is None:
            return True
        try:
            if await self._local.runs(accepted.host):
                return True
        except FenceVirtError as exc:
            self.log.warning(
                "%s: not served: cannot read the local domains' addresses: %s",
                _About(accepted),
                exc,
            )
            return False
        self.log.info(
            "%s: not served: %s is no address of a domain running here (local_guests_only)",
            _About(accepted),
            accepted.host,
        )
        return False

    async def _serve(self, accepted: Accepted, channel: SocketChannel) -> None:
        assert self._dispatcher is not None
        try:
            if accepted.v2:
                reply = await serve_v2(
                    accepted.received,
                    channel,
                    self._credentials.key,
                    self._dispatcher,
                    requester=accepted.host,
                    log=self.log,
                )
            else:
                reply = await serve(
                    accepted.received,
                    channel,
                    self._credentials,
                    self._dispatcher,
                    requester=accepted.host,
                    log=self.log,
                )
        except RemoteError as exc:
            # a failed handshake (wrong proof, silent client): the reason, never a digest,
            # within the drop log's rate limit
            self._drops.warn(f"{_About(accepted)}: {exc}")
            self._dispatcher.dropped(accepted.host, DropKind.of(exc), str(exc))
        else:
            self.log.debug("%s: answered %d", _About(accepted), reply[0])
        finally:
            channel.close()
