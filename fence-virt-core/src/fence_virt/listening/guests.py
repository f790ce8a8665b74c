"""Serving guests on their UNIX sockets: the host side of the serial and vmchannel transports.

QEMU listens on each guest's socket (libvirt ``<source mode='bind' path=...>``) and fence_virtd
is the *client* (c-suite-spec §1.5, §7.2). A :class:`GuestSocketServer` runs one task per
socket it is given; which sockets exist is the caller's business (the libvirt library's
discovery, from lifecycle events). Invariants:

* each task connects (``connect_timeout``, C: 3 s), frames what the guest writes with
  :class:`~fence_virt.listening.SerialRequestReader`, answers every request through the
  :class:`~fence_virt.types.Dispatcher` with :func:`~fence_virt.listening.answer_serial` -- the
  requester is the UUID of the guest owning the socket, never anything the guest sends -- and
  writes the answer back, each write within ``write_timeout`` seconds;
* the requests of one socket are answered one at a time, in arrival order (a byte stream
  carries no request ids); sockets are independent, so a guest that floods its socket, never
  reads its answers or stops in the middle of a request holds up nobody but itself (C serves
  the lowest readable fd of one ``select`` loop, and a reboot holds every guest);
* bytes that are not a request cost one line on that guest's own rate-limited drop log; a
  request left incomplete for ``idle_timeout`` seconds (C: 1 s per 74-byte read) is dropped,
  so it cannot swallow the start of the next one;
* a request already seen from the same guest -- operation, seqno and domain, C's history
  key -- within 10 s (or while it runs) is dropped without an answer, as in C; unlike C's one
  history per listener, one guest's requests never suppress another's;
* a lost socket (EOF, reset, a write that timed out) is reconnected every ``retry_interval``
  seconds until :meth:`GuestSocketServer.remove`, which cancels the task and closes the
  socket; a socket closed by QEMU is the normal start of a domain's stop, so failing to
  reconnect is not a warning for :data:`STOP_GRACE` seconds after that.

Typical use, in a listener whose discovery reports sockets as domains start and stop::

    server = GuestSocketServer(dispatcher, log=log)
    server.add(uuid, "/var/lib/libvirt/qemu/fence/vm1.sock", name="vm1")   # domain started
    server.remove(uuid)                                                   # domain stopped
    await server.close()                                                  # listener stops
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass

from fence_virt.errors import LocalError
from fence_virt.listening.answers import answer_serial
from fence_virt.listening.droplog import DropLog
from fence_virt.listening.history import RequestHistory, request_key
from fence_virt.listening.serial import SerialRequestReader, Skipped
from fence_virt.protocol import SerialRequest
from fence_virt.tracing import begin_request
from fence_virt.types import Dispatcher, DropKind

__all__ = [
    "CONNECT_TIMEOUT",
    "IDLE_TIMEOUT",
    "RETRY_INTERVAL",
    "STOP_GRACE",
    "WRITE_TIMEOUT",
    "GuestSocketServer",
]

#: seconds to connect to a guest's socket (C: virt-sockets.c, 3 s)
CONNECT_TIMEOUT = 3.0
#: seconds of silence after which an incomplete request is dropped (C: 1 s per read)
IDLE_TIMEOUT = 1.0
#: seconds each answer may take to write (C: none for the result, 1 s per host-list record)
WRITE_TIMEOUT = 10.0
#: seconds between attempts to (re)connect a socket that is not answering
RETRY_INTERVAL = 1.0
#: seconds after the other end closed a socket during which failing to reconnect is logged
#: at debug level only: libvirt reports a domain stopped once it has reaped QEMU, which can
#: take seconds after QEMU closed its sockets (a destroy waits for the process to exit)
STOP_GRACE = 10.0
#: bytes read from a socket at once
_CHUNK = 4096

_default_log = logging.getLogger("fence_virt.listening")


@dataclass(frozen=True, slots=True)
class _Guest:
    """One socket of one guest."""

    uuid: str
    path: str
    name: str | None

    def __str__(self) -> str:
        who = f"{self.uuid} ({self.name})" if self.name else self.uuid
        return f"guest {who} on {self.path}"


class _Lost(Exception):
    """The socket cannot be used any more; the message says why."""


class _Closed(_Lost):
    """The other end closed the socket (QEMU exited or restarted its chardev)."""


class GuestSocketServer:
    """Serves every guest socket it was given, each in its own task, until removed.

    All methods must be called on the event loop's thread; :meth:`add` needs a running loop.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        log: logging.Logger | None = None,
        history: RequestHistory | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        """``log``: the listener's logger (lines name the guest); ``history``: the duplicate
        filter (default: C's 10 s); timeouts and the retry interval in seconds."""
        self._dispatcher = dispatcher
        self._log = log or _default_log
        self._history = RequestHistory() if history is None else history
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._write_timeout = write_timeout
        self._retry_interval = retry_interval
        self._tasks: dict[_Guest, asyncio.Task[None]] = {}
        self._connected: set[_Guest] = set()
        self._closed = False

    @property
    def sockets(self) -> frozenset[tuple[str, str]]:
        """(guest UUID, socket path) of every socket being served or retried."""
        return frozenset((guest.uuid, guest.path) for guest in self._tasks)

    @property
    def connected(self) -> frozenset[tuple[str, str]]:
        """(guest UUID, socket path) of the sockets connected right now."""
        return frozenset((guest.uuid, guest.path) for guest in self._connected)

    def add(self, uuid: str, path: str, *, name: str | None = None) -> None:
        """Serve the socket at ``path`` for the guest ``uuid`` (its requester identity);
        nothing happens if it is served already. ``name``: the domain name, for logs.

        :raises fence_virt.errors.LocalError: called after :meth:`close`.
        """
        if self._closed:
            raise LocalError("GuestSocketServer.add() after close()")
        if any((g.uuid, g.path) == (uuid, path) for g in self._tasks):
            return
        guest = _Guest(uuid, path, name)
        task = asyncio.get_running_loop().create_task(self._serve(guest), name=str(guest))
        self._tasks[guest] = task
        task.add_done_callback(lambda done: self._forget(guest, done))

    def _forget(self, guest: _Guest, task: asyncio.Task[None]) -> None:
        if self._tasks.get(guest) is task:
            del self._tasks[guest]

    def remove(self, uuid: str, path: str | None = None) -> None:
        """Stop serving the guest's sockets (only ``path``, if given) and close them; a
        request in progress is cancelled. Unknown sockets are ignored."""
        for guest, task in list(self._tasks.items()):
            if guest.uuid == uuid and path in (None, guest.path):
                del self._tasks[guest]
                task.cancel()

    async def close(self) -> None:
        """Stop serving every socket and wait until all are closed; idempotent."""
        self._closed = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # one socket ------------------------------------------------------------------------------

    async def _serve(self, guest: _Guest) -> None:
        loop = asyncio.get_running_loop()
        drops = DropLog(
            self._log, schedule=loop.call_later, what="input", report=self._dispatcher.dropped
        )
        quiet_until = 0.0  # connect failures before this loop time are expected: debug only
        warned = False
        while True:
            try:
                reader, writer = await self._connect(guest)
            except OSError as exc:
                why = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or exc
                loud = not warned and loop.time() >= quiet_until
                warned = warned or loud
                self._log.log(
                    logging.WARNING if loud else logging.DEBUG,
                    "%s: cannot connect: %s (retrying every %g s)",
                    guest,
                    why,
                    self._retry_interval,
                )
                await asyncio.sleep(self._retry_interval)
                continue
            self._log.info("serving %s", guest)
            warned = False
            self._connected.add(guest)
            try:
                await self._converse(guest, reader, writer, drops)
            except _Closed as exc:
                # QEMU exits (its end closes) a moment before libvirt reports the domain
                # stopped and remove() is called: expected, so not a warning yet
                self._log.info("%s: %s; reconnecting", guest, exc)
                quiet_until = loop.time() + STOP_GRACE
            except _Lost as exc:
                self._log.warning("%s: %s; reconnecting", guest, exc)
                quiet_until = 0.0
            finally:
                self._connected.discard(guest)
                writer.close()
            await asyncio.sleep(self._retry_interval)

    async def _connect(self, guest: _Guest) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """OSError (TimeoutError included) when the socket does not accept in time."""
        async with asyncio.timeout(self._connect_timeout):
            return await asyncio.open_unix_connection(guest.path)

    async def _converse(
        self,
        guest: _Guest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        drops: DropLog,
    ) -> None:
        """Answer requests until the socket is lost (:class:`_Lost`)."""
        framing = SerialRequestReader()
        while True:
            try:
                data = await self._read(reader, framing)
            except TimeoutError:
                skipped = framing.discard()
                if skipped is not None:
                    drops.drop(str(guest), f"{skipped.size} bytes: {skipped.reason}")
                continue
            except OSError as exc:
                raise _Lost(f"reading: {exc.strerror or exc}") from None
            if not data:
                raise _Closed("the socket was closed at the other end")
            for event in framing.feed(data):
                if isinstance(event, Skipped):
                    drops.drop(str(guest), f"{event.size} bytes: {event.reason}")
                else:
                    await self._answer(guest, event, writer, drops)

    async def _read(self, reader: asyncio.StreamReader, framing: SerialRequestReader) -> bytes:
        """The next chunk; TimeoutError if a partial request waits longer than idle_timeout."""
        if not framing.buffered:
            return await reader.read(_CHUNK)
        async with asyncio.timeout(self._idle_timeout):
            return await reader.read(_CHUNK)

    async def _answer(
        self,
        guest: _Guest,
        request: SerialRequest,
        writer: asyncio.StreamWriter,
        drops: DropLog,
    ) -> None:
        about = f"request {request.request} seqno {request.seqno} domain {request.domain}"
        claimed: Hashable = (guest.uuid, *request_key(request))
        if not self._history.claim(claimed):
            drops.drop(
                str(guest), f"{about}: the same request came in the last 10 s", DropKind.REPLAY
            )
            return
        begin_request()  # the guest's task serves its requests one after the other
        try:
            self._log.debug("%s: %s", guest, about)
            reply = await answer_serial(request, guest.uuid, self._dispatcher, log=self._log)
            writer.write(reply)
            try:
                async with asyncio.timeout(self._write_timeout):
                    await writer.drain()
            except TimeoutError:
                raise _Lost(f"the answer was not taken within {self._write_timeout:g} s") from None
            except OSError as exc:
                raise _Lost(f"writing: {exc.strerror or exc}") from None
        finally:
            # carried out (or cancelled while the backend runs it): never run it twice
            self._history.complete(claimed)
