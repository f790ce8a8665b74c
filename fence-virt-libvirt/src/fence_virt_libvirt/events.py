"""Domain lifecycle events of one libvirt URI, delivered on the running asyncio loop.

A :class:`LifecycleWatch` keeps its own connection (separate from any
:class:`~fence_virt_libvirt.hypervisor.Hypervisor`), registers one
``VIR_DOMAIN_EVENT_ID_LIFECYCLE`` callback and a close callback on it, and turns each libvirt
event into a :class:`LifecycleEvent` handed to ``on_event`` on the loop's thread.

Built for a daemon that runs for months:

* **libvirtd restarts or the link breaks** (close callback: EOF, keepalive timeout, error):
  the watch logs it once, releases the dead connection, and reopens the URI every
  ``retry_interval`` seconds until it succeeds; then it registers its callbacks again and calls
  ``on_connected``. Events that happened while it was disconnected are lost (libvirt does not
  replay them), which is why ``on_connected`` exists: read the current state there.
* **A hung libvirtd** is noticed by libvirt keepalives (default every 5 s, 5 unanswered probes,
  as C's serial listener, ``server/virt-serial.c``) and handled like a restart.
* **stop()** deregisters the event and close callbacks and closes the connection (a registered
  callback holds a reference that would keep the connection, and libvirtd's client, alive);
  no callback runs after it returns.

C's serial listener (c-suite-spec §7.1) watches events in a thread and never reconnects:
after a libvirtd restart it misses every later domain start until fence_virtd restarts.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt

from fence_virt.errors import BackendError, LocalError
from fence_virt_libvirt.eventloop import bind_running_loop
from fence_virt_libvirt.hypervisor import HypervisorUnreachable, LibvirtCallFailed, describe

__all__ = ["DomainEvent", "LifecycleEvent", "LifecycleWatch"]

log = logging.getLogger("fence_virt_libvirt")

#: seconds between attempts to reopen a lost URI
DEFAULT_RETRY_INTERVAL = 5.0
#: (seconds between probes, unanswered probes before the link counts as dead), as C
DEFAULT_KEEPALIVE = (5, 5)

_CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "error",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "end of file",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "keepalive timeout",
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "closed by the client",
}


class DomainEvent(enum.IntEnum):
    """libvirt's ``virDomainEventType`` numbers."""

    DEFINED = libvirt.VIR_DOMAIN_EVENT_DEFINED
    UNDEFINED = libvirt.VIR_DOMAIN_EVENT_UNDEFINED
    STARTED = libvirt.VIR_DOMAIN_EVENT_STARTED
    SUSPENDED = libvirt.VIR_DOMAIN_EVENT_SUSPENDED
    RESUMED = libvirt.VIR_DOMAIN_EVENT_RESUMED
    STOPPED = libvirt.VIR_DOMAIN_EVENT_STOPPED
    SHUTDOWN = libvirt.VIR_DOMAIN_EVENT_SHUTDOWN
    PMSUSPENDED = libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED
    CRASHED = libvirt.VIR_DOMAIN_EVENT_CRASHED


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One domain lifecycle event, e.g. ``LifecycleEvent("qemu:///system", "vm1",
    "6695eb01-f6a4-8304-79aa-97f2502e193f", DomainEvent.STOPPED, 1)``."""

    #: the URI of the watch that saw it
    uri: str
    #: domain name and UUID (lower-case, hyphenated) as libvirt reported them
    name: str
    uuid: str
    #: what happened; a plain int only for a number newer than this module
    event: DomainEvent | int
    #: libvirt's detail number for that event, e.g. ``VIR_DOMAIN_EVENT_STOPPED_DESTROYED`` (1)
    detail: int


def _event_type(number: int) -> DomainEvent | int:
    try:
        return DomainEvent(number)
    except ValueError:
        return number


@dataclass(frozen=True)
class _Link:
    """An open connection with our callbacks registered on it."""

    uri: str
    conn: Any
    callback_id: int | None

    def release(self) -> None:
        """Deregister and close; blocking (run it in a thread). Errors of a dead link are
        expected and only logged at debug level."""
        callback_id = self.callback_id
        if callback_id is not None:
            self._quietly(
                "deregistering events", lambda: self.conn.domainEventDeregisterAny(callback_id)
            )
        self._quietly("unregistering the close callback", self.conn.unregisterCloseCallback)
        try:
            left = self.conn.close()
        except libvirt.libvirtError as exc:
            log.debug("%s: closing: %s", self.uri, describe(exc))
            return
        if left:
            log.warning("%s: event connection still has %d references after close", self.uri, left)

    def _quietly(self, what: str, step: Callable[[], object]) -> None:
        try:
            step()
        except libvirt.libvirtError as exc:
            log.debug("%s: %s: %s", self.uri, what, describe(exc))


class LifecycleWatch:
    """Lifecycle events of every domain on ``uri``, handed to ``on_event`` on the asyncio loop.

    ::

        watch = LifecycleWatch("qemu:///system", on_event=queue.put_nowait,
                               on_connected=lambda uri: rescan.set())
        await watch.start()      # raises if the URI cannot be watched now
        ...
        await watch.stop()

    :param on_event: called on the loop thread with each :class:`LifecycleEvent`; it must not
        block (hand work to a task or queue). An exception it raises is logged and dropped.
    :param on_connected: called on the loop thread with the URI after each connection, the
        first included, once the event callback is registered. Events missed before that
        moment are gone: read the current state here (e.g. ``list_domains`` in a thread).
        An event may arrive just before this call; a state read here is at least as new.
    :param retry_interval: seconds between attempts to reopen the URI after it was lost.
    :param keepalive: ``(interval seconds, count)`` for libvirt keepalives, or ``None`` to
        rely on the connection closing. Drivers without keepalives (``test:///``) ignore it.
    """

    def __init__(
        self,
        uri: str,
        on_event: Callable[[LifecycleEvent], None],
        *,
        on_connected: Callable[[str], None] | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        keepalive: tuple[int, int] | None = DEFAULT_KEEPALIVE,
    ) -> None:
        self.uri = uri
        self._on_event = on_event
        self._on_connected = on_connected
        self._retry_interval = retry_interval
        self._keepalive = keepalive
        self._generation = 0
        self._link: _Link | None = None
        self._lost = False
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True while an event connection is registered and not known to be lost."""
        return self._link is not None and not self._lost

    def describe(self) -> str:
        """One line for logs: ``lifecycle events of URI``."""
        return f"lifecycle events of {self.uri}"

    async def start(self) -> None:
        """Connect and register; return once events flow (``on_connected`` has been called).

        :raises HypervisorUnreachable: the URI cannot be opened now (no retry: the caller
            decides whether to start without it).
        :raises LibvirtCallFailed: the URI opened but refused event registration.
        :raises LocalError: started twice, or another open asyncio loop runs libvirt events.
        """
        if self._task is not None or self._stopping:
            raise LocalError(f"{self.describe()}: start() called twice")
        bind_running_loop()
        self._wake = asyncio.Event()
        self._link = await self._open()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=self.describe())
        self._connected()

    async def stop(self) -> None:
        """Deregister the callbacks and close the connection; idempotent.

        No ``on_event`` or ``on_connected`` call happens once this is called. If a reconnect
        attempt is under way it is waited for (an open cannot be interrupted) and undone.
        """
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and self._wake is not None:
            self._wake.set()
            await task
        link, self._link = self._link, None
        if link is not None:
            await asyncio.to_thread(link.release)

    # connecting --------------------------------------------------------------------------------

    async def _open(self) -> _Link:
        self._generation += 1
        self._lost = False
        return await asyncio.to_thread(self._connect, self._generation)

    def _connect(self, generation: int) -> _Link:
        """Open and register (worker thread: opening may take a transport timeout)."""
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise HypervisorUnreachable(f"cannot connect to {self.uri}: {describe(exc)}") from exc
        link = _Link(self.uri, conn, None)
        try:
            conn.registerCloseCallback(self._closed, generation)
            link = _Link(self.uri, conn, self._register(conn, generation))
            self._start_keepalive(conn)
            alive = bool(conn.isAlive())
        except libvirt.libvirtError as exc:
            link.release()
            raise LibvirtCallFailed(f"cannot watch {self.uri}: {describe(exc)}") from exc
        if not alive:  # lost before the close callback was in place
            link.release()
            raise HypervisorUnreachable(f"connection to {self.uri} closed while registering")
        return link

    def _register(self, conn: Any, generation: int) -> int:
        return int(
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._deliver, generation
            )
        )

    def _start_keepalive(self, conn: Any) -> None:
        if self._keepalive is None:
            return
        try:
            conn.setKeepAlive(*self._keepalive)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
            log.debug("%s: no keepalives (%s)", self.uri, describe(exc))

    # the supervisor task ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            if self._lost:
                await self._reconnect()

    async def _reconnect(self) -> None:
        lost_at = time.monotonic()
        dead, self._link = self._link, None
        if dead is not None:
            await asyncio.to_thread(dead.release)
        failures = 0
        while not self._stopping:
            try:
                link = await self._open()
            except BackendError as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "%s (retrying every %g s)", exc, self._retry_interval)
                await self._pause()
                continue
            if self._stopping:
                await asyncio.to_thread(link.release)
                return
            self._link = link
            log.info(
                "lifecycle events from %s again (reconnected after %.1f s)",
                self.uri,
                time.monotonic() - lost_at,
            )
            self._connected()
            return

    async def _pause(self) -> None:
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), self._retry_interval)
        except TimeoutError:
            return
        if self._stopping:
            return
        self._wake.clear()

    # libvirt callbacks (on the loop thread) ----------------------------------------------------

    def _current(self, generation: object) -> bool:
        return generation == self._generation and not self._stopping

    def _closed(self, _conn: Any, reason: int, generation: object) -> None:
        if not self._current(generation) or self._lost:
            return
        why = _CLOSE_REASONS.get(reason, f"reason {reason}")
        log.warning("lifecycle events from %s lost (%s); reconnecting", self.uri, why)
        self._lost = True
        if self._wake is not None:
            self._wake.set()

    def _deliver(self, _conn: Any, dom: Any, event: int, detail: int, generation: object) -> None:
        if not self._current(generation):
            return
        record = LifecycleEvent(
            uri=self.uri,
            name=str(dom.name()),
            uuid=str(dom.UUIDString()),
            event=_event_type(event),
            detail=int(detail),
        )
        try:
            self._on_event(record)
        except Exception:
            log.exception("%s: on_event failed for %s", self.describe(), record)

    def _connected(self) -> None:
        if self._on_connected is None or self._stopping:
            return
        try:
            self._on_connected(self.uri)
        except Exception:
            log.exception("%s: on_connected failed", self.describe())
