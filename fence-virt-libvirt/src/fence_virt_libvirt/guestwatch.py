"""The guest sockets of every running domain on one URI, kept current from lifecycle events.

A :class:`GuestSocketWatch` reads the running domains' live XML once connected (and again
after every reconnect), then follows libvirt's lifecycle events: a domain that starts is read
and its sockets (:func:`~fence_virt_libvirt.guests.socket_paths`) are reported with
``on_added``; a domain that stops has its sockets reported with ``on_removed``. No polling.

Invariants:

* every change is applied by one task, in the order libvirt reported it, so a domain
  started and stopped in quick succession ends removed, and a re-read after a reconnect
  (events are lost while libvirtd is away) is never overtaken by an older event;
* ``on_added`` / ``on_removed`` are called on the loop thread, once per change of the set
  (:attr:`GuestSocketWatch.sockets`), never for a socket twice in a row;
* a re-read that fails (libvirtd gone again, a call refused) is retried after
  ``retry_interval`` seconds, and again after the next reconnect.

C (``server/virt-serial.c``, c-suite-spec §7.1) reads the running domains once at start-up
and follows events in a thread that ends when the libvirt connection closes: after a libvirtd
restart it never notices another domain start until fence_virtd is restarted. Domains in
state shut off or crashed are skipped when reading them all, as in C.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt

from fence_virt.errors import BackendError
from fence_virt_libvirt.domains import domain_xml
from fence_virt_libvirt.events import (
    DEFAULT_KEEPALIVE,
    DEFAULT_RETRY_INTERVAL,
    DomainEvent,
    LifecycleEvent,
    LifecycleWatch,
)
from fence_virt_libvirt.guests import DeviceKind, GuestSocket, socket_paths
from fence_virt_libvirt.hypervisor import Hypervisor

__all__ = ["GuestSocketWatch"]

log = logging.getLogger("fence_virt_libvirt")

#: states in which C does not look for sockets when it reads every domain
_SKIPPED_STATES = frozenset({libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED})


@dataclass(frozen=True, slots=True)
class _Rescan:
    """Read every running domain again."""


@dataclass(frozen=True, slots=True)
class _Started:
    uuid: str
    name: str


@dataclass(frozen=True, slots=True)
class _Stopped:
    uuid: str
    name: str


_Change = _Rescan | _Started | _Stopped


class GuestSocketWatch:
    """The sockets of ``kind`` devices of the running domains on ``uri``.

    ::

        watch = GuestSocketWatch("qemu:///system", DeviceKind.SERIAL, "/var/run/fence",
                                 on_added=serve, on_removed=release)
        await watch.start()      # the running domains have been read when it returns
        ...
        await watch.stop()

    :param uri: the libvirt URI; ``""`` is libvirt's default URI (as C without ``uri``).
    :param directory: only sockets directly in it (C's rule,
        :func:`~fence_virt_libvirt.guests.in_directory`); ``None`` for any path.
    :param on_added: called on the loop thread with each socket that appears; must not block.
    :param on_removed: called with each socket whose domain stopped (or no longer has it).
    :param retry_interval: seconds between attempts to reconnect, or to read again.
    :param keepalive: as :class:`~fence_virt_libvirt.LifecycleWatch`.
    """

    def __init__(
        self,
        uri: str,
        kind: DeviceKind,
        directory: str | None,
        *,
        on_added: Callable[[GuestSocket], None],
        on_removed: Callable[[GuestSocket], None],
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        keepalive: tuple[int, int] | None = DEFAULT_KEEPALIVE,
    ) -> None:
        self.uri = uri
        self.kind = kind
        self.directory = directory
        self._on_added = on_added
        self._on_removed = on_removed
        self._retry_interval = retry_interval
        self._sockets: set[GuestSocket] = set()
        self._hypervisor = Hypervisor(uri)
        self._watch = LifecycleWatch(
            uri,
            self._event,
            on_connected=self._connected,
            retry_interval=retry_interval,
            keepalive=keepalive,
        )
        self._queue: asyncio.Queue[_Change] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None

    @property
    def sockets(self) -> frozenset[GuestSocket]:
        """The sockets reported and not removed since."""
        return frozenset(self._sockets)

    @property
    def connected(self) -> bool:
        """Lifecycle events flow (see :attr:`LifecycleWatch.connected`)."""
        return self._watch.connected

    def describe(self) -> str:
        """One line for logs, e.g. ``serial sockets in /var/run/fence of qemu:///system``."""
        where = f"in {self.directory}" if self.directory is not None else "anywhere"
        return f"{self.kind.value} sockets {where} of {self.uri or 'the default libvirt URI'}"

    async def start(self) -> None:
        """Connect, read the running domains and follow their events; return once read.

        :raises fence_virt_libvirt.HypervisorUnreachable: the URI cannot be opened now.
        :raises fence_virt_libvirt.LibvirtCallFailed: it opened but refused events.
        :raises fence_virt.errors.LocalError: as :meth:`LifecycleWatch.start`.
        """
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=self.describe())
        await self._watch.start()  # its on_connected queues the first read
        await self.settled()

    async def settled(self) -> None:
        """Wait until every change reported so far has been applied."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        """Stop following events and close both connections; idempotent. ``on_removed`` is
        not called: the caller releases whatever it serves."""
        await self._watch.stop()
        if self._retry is not None:
            self._retry.cancel()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await asyncio.to_thread(self._hypervisor.close)

    # from the lifecycle watch (loop thread) -----------------------------------------------

    def _submit(self, change: _Change) -> None:
        if self._queue is not None and self._worker is not None:
            self._queue.put_nowait(change)

    def _event(self, event: LifecycleEvent) -> None:
        if event.event == DomainEvent.STARTED:
            self._submit(_Started(event.uuid, event.name))
        elif event.event == DomainEvent.STOPPED:
            self._submit(_Stopped(event.uuid, event.name))

    def _connected(self, _uri: str) -> None:
        self._submit(_Rescan())

    # applying changes, one at a time -------------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            change = await self._queue.get()
            try:
                await self._apply(change)
            except BackendError as exc:
                self._failed(change, exc)
            except Exception:  # a bug must not end the watch: log it, go on
                log.exception("%s: applying %s failed", self.describe(), change)
            finally:
                self._queue.task_done()

    def _failed(self, change: _Change, exc: BackendError) -> None:
        if not isinstance(change, _Rescan):
            log.warning("%s: cannot read domain %s: %s", self.describe(), change.name, exc)
            return
        log.warning(
            "%s: cannot read the running domains (%s); again in %g s",
            self.describe(),
            exc,
            self._retry_interval,
        )
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(
                self._retry_interval, self._retry_rescan
            )

    def _retry_rescan(self) -> None:
        self._retry = None
        self._submit(_Rescan())

    async def _apply(self, change: _Change) -> None:
        if isinstance(change, _Rescan):
            found = await asyncio.to_thread(self._hypervisor.call, self._read_running)
            self._replace(found, lambda _socket: True)
            log.info(
                "%s: %d sockets of %d running domains",
                self.describe(),
                len(self._sockets),
                len({s.uuid for s in self._sockets}),
            )
        elif isinstance(change, _Started):
            xml = await asyncio.to_thread(domain_xml, self._hypervisor, change.uuid)
            found = set() if xml is None else self._sockets_of(change.uuid, change.name, xml)
            self._replace(found, lambda socket: socket.uuid == change.uuid)
        else:
            self._replace(set(), lambda socket: socket.uuid == change.uuid)

    def _read_running(self, conn: Any) -> set[GuestSocket]:
        """Every running domain's sockets (worker thread)."""
        found: set[GuestSocket] = set()
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                if dom.state()[0] in _SKIPPED_STATES:
                    continue
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # stopped meanwhile; its event follows
                raise
            found |= self._sockets_of(dom.UUIDString(), dom.name(), xml)
        return found

    def _sockets_of(self, uuid: str, name: str, xml: str) -> set[GuestSocket]:
        return {
            GuestSocket(uuid, name, path) for path in socket_paths(xml, self.kind, self.directory)
        }

    def _replace(self, found: set[GuestSocket], scope: Callable[[GuestSocket], bool]) -> None:
        """Make the sockets within ``scope`` exactly ``found``, reporting each change."""
        before = {socket for socket in self._sockets if scope(socket)}
        for socket in sorted(before - found):
            self._sockets.discard(socket)
            log.info("domain %s (%s): releasing %s", socket.name, socket.uuid, socket.path)
            self._report(self._on_removed, socket)
        for socket in sorted(found - before):
            self._sockets.add(socket)
            log.info(
                "domain %s (%s): %s socket %s",
                socket.name,
                socket.uuid,
                self.kind.value,
                socket.path,
            )
            self._report(self._on_added, socket)

    def _report(self, callback: Callable[[GuestSocket], None], socket: GuestSocket) -> None:
        try:
            callback(socket)
        except Exception:
            log.exception("%s: callback failed for %s", self.describe(), socket)
