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
* the signature of every copy of an answered request is refused for 10 minutes
  (:class:`fence_virt.listening.ReplayGuard`);
* at most ``max_requests`` requests are in progress; further datagrams are dropped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from fence_virt import CheckContext, Dispatcher, DropKind, Finding
from fence_virt.errors import LocalError, RemoteError
from fence_virt.listening import (
    Credentials,
    DropLog,
    HistoryKey,
    ReplayGuard,
    RequestHistory,
    SocketChannel,
    serve,
)
from fence_virt.tracing import request_context
from fence_virt_listener_multicast.datagram import Accepted, check_datagram
from fence_virt_listener_multicast.diagnosis import diagnose
from fence_virt_listener_multicast.settings import MulticastSettings
from fence_virt_listener_multicast.sockets import connect_back, open_group_socket

__all__ = ["MulticastListener"]

#: loggers are named per instance: ``fence_virt.listener.<instance name>``
LOGGER_PREFIX = "fence_virt.listener."

#: copies of one request remembered (other addresses to try; signatures to refuse later)
MAX_COPIES = 16


@dataclass
class _Request:
    """A request in progress and the copies of it that arrived meanwhile."""

    #: addresses still to try for the connect-back
    candidates: list[Accepted]
    #: every copy received, the first included
    copies: list[Accepted]
    connected: bool = False

    def add_copy(self, accepted: Accepted) -> None:
        if len(self.copies) >= MAX_COPIES:
            return
        self.copies.append(accepted)
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


class _About:
    """Log argument naming a request; formatted only if the line is emitted."""

    __slots__ = ("_accepted",)

    def __init__(self, accepted: Accepted) -> None:
        self._accepted = accepted

    def __str__(self) -> str:
        request, host = self._accepted.request, self._accepted.host
        domain = request.domain or "-"
        return f"request {request.request} seqno {request.seqno} domain {domain} from {host}"


class MulticastListener:
    """:class:`fence_virt.Listener` for the C ``fence_xvm`` multicast protocol."""

    def __init__(
        self, settings: MulticastSettings, key: bytes, history: RequestHistory | None = None
    ) -> None:
        """``history`` replaces the 10-second duplicate filter (tests)."""
        self._settings = settings
        self.log = logging.getLogger(LOGGER_PREFIX + settings.name)
        self._credentials = Credentials(settings.auth, key)
        self._history = RequestHistory() if history is None else history
        self._replays = ReplayGuard()
        self._drops = DropLog(self.log, what="datagram")
        self._requests: dict[HistoryKey, _Request] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._receiver: _Receiver | None = None
        self._dispatcher: Dispatcher | None = None

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
        self._transport, self._receiver = await loop.create_datagram_endpoint(
            lambda: _Receiver(self), sock=sock
        )
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

    @property
    def in_progress(self) -> int:
        return len(self._tasks)

    def datagram_received(self, data: bytes, sender: str) -> None:
        """Check one datagram and start its request, or drop it with one log line."""
        try:
            accepted = check_datagram(data, self._credentials.key, self._settings.hash)
        except RemoteError as exc:
            self._drops.drop(sender, str(exc), DropKind.of(exc))
            return
        age = self._replays.age(accepted.request)
        if age is not None:
            self._drops.drop(
                sender, f"replayed copy of a request served {age:.0f} s ago", DropKind.REPLAY
            )
            return
        key = accepted.history_key
        if not self._history.claim(key):
            self.log.debug(
                "%s: retransmit, dropped (in progress or just answered)", _About(accepted)
            )
            if (running := self._requests.get(key)) is not None:
                running.add_copy(accepted)
            else:  # a late copy of a request already answered
                self._replays.remember(accepted.request)
            return
        if len(self._tasks) >= self._settings.max_requests:
            self._history.release(key)
            self._drops.drop(
                sender,
                f"{len(self._tasks)} requests in progress (max_requests)",
                DropKind.OVERLOAD,
            )
            return
        # the request's task, and this line, carry a request id of their own
        context = request_context()
        context.run(self.log.debug, "%s: accepted (UDP from %s)", _About(accepted), sender)
        self._requests[key] = _Request([accepted], [accepted])
        task = asyncio.get_running_loop().create_task(self._run(key), context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: HistoryKey) -> None:
        request = self._requests[key]
        connected = None
        try:
            connected = await self._connect(request)
            if connected is not None:
                await self._serve(*connected)
        except Exception:
            self.log.exception("%s: unexpected error", _About(request.copies[0]))
        finally:
            del self._requests[key]
            if connected is None:
                self._history.release(key)
            else:
                self._history.complete(key)
                for copy in request.copies:
                    self._replays.remember(copy.request)

    async def _connect(self, request: _Request) -> tuple[Accepted, SocketChannel] | None:
        """Try each address the request came with, in arrival order; None if none answers."""
        settings = self._settings
        while request.candidates:
            accepted = request.candidates.pop(0)
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

    async def _serve(self, accepted: Accepted, channel: SocketChannel) -> None:
        assert self._dispatcher is not None
        try:
            reply = await serve(
                accepted.request,
                channel,
                self._credentials,
                self._dispatcher,
                requester=accepted.host,
                log=self.log,
            )
        except RemoteError as exc:
            self.log.warning("%s: %s", _About(accepted), exc)
            self._dispatcher.dropped(accepted.host, DropKind.of(exc), str(exc))
        else:
            self.log.debug("%s: answered %d", _About(accepted), reply[0])
        finally:
            channel.close()
