"""This host's hypervisors as a distributed backend keeps them: fenced locally, published on.

A distributed backend (cpg, amqp) fences the VMs of its own host through a
:class:`~fence_virt_libvirt.operations.Fencer` and tells the other hosts which VMs it holds.
:class:`LocalVms` owns that local side:

* :meth:`LocalVms.open` connects every URI (:func:`connect_hypervisors`: at least one must
  open; the others are retried on each request) and builds the :class:`Fencer`;
  :meth:`LocalVms.carry_out` runs a fencing operation through it;
* :meth:`LocalVms.watch` watches domain lifecycle events on every URI
  (:class:`~fence_virt_libvirt.events.LifecycleWatch`; a URI whose events cannot be watched is
  only refreshed periodically) and runs the refresh loop: the ``publish`` callback is awaited
  every ``refresh_interval`` seconds, and soon after any change — a lifecycle event, a watch
  (re)connecting, or :meth:`LocalVms.changed` — with a burst of changes coalesced into one call;
* :meth:`LocalVms.stop` ends the loop and the watches, :meth:`LocalVms.close` also closes the
  fencer.

Everything but :func:`connect_hypervisors` runs on the asyncio loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from fence_virt import Target
from fence_virt.errors import BackendError, LocalError
from fence_virt.protocol import Operation, Response
from fence_virt_libvirt.events import LifecycleEvent, LifecycleWatch
from fence_virt_libvirt.hypervisor import Hypervisor, HypervisorUnreachable, quiet_libvirt
from fence_virt_libvirt.operations import Fencer

__all__ = ["LocalVms", "connect_hypervisors"]

log = logging.getLogger("fence_virt_libvirt")

#: the operations another host may ask for, and the :class:`Fencer` method of each
_FENCER_METHODS = {
    Operation.OFF: "off",
    Operation.ON: "on",
    Operation.REBOOT: "reboot",
    Operation.STATUS: "status",
}


def connect_hypervisors(uris: Sequence[str]) -> list[Hypervisor]:
    """One connected :class:`Hypervisor` per URI, in order (blocks: call from a thread).

    libvirt's own error printing is silenced first (:func:`quiet_libvirt`). A URI that does
    not open is logged as a warning and its :class:`Hypervisor` returned unconnected: it is
    retried on each request, as C's libvirt backend reconnects.

    :raises BackendError: not one URI opens (the message holds every URI's reason).
    """
    quiet_libvirt()
    hypervisors = [Hypervisor(uri) for uri in uris]
    failures = []
    for hv in hypervisors:
        try:
            hv.connect()
        except HypervisorUnreachable as exc:
            failures.append(str(exc))
    if len(failures) == len(hypervisors):
        raise BackendError(f"could not connect to any hypervisor: {'; '.join(failures)}")
    for failure in failures:
        log.warning("%s (will retry on each request)", failure)
    return hypervisors


class LocalVms:
    """The :class:`Fencer` over this host's URIs, and the re-publication of its VMs.

    :param owner: who uses it, for messages and the task name (e.g. ``"cpg backend"``).
    :param uris: libvirt URIs of this host, in the order the fencer searches them.
    :param reboot_timeout: seconds the fencer waits for a VM to be off, or running again.
    :param refresh_interval: seconds between two ``publish`` calls when nothing changes.
    :param publish: awaited on the loop to read and publish the local VMs; called by one task
        only, never twice at once; an exception it raises is logged and the loop goes on.
    """

    def __init__(
        self,
        owner: str,
        uris: Sequence[str],
        *,
        reboot_timeout: float,
        refresh_interval: float,
        publish: Callable[[], Awaitable[None]],
    ) -> None:
        self._owner = owner
        self._uris = tuple(uris)
        self._reboot_timeout = reboot_timeout
        self._refresh_interval = refresh_interval
        self._publish = publish
        self._fencer: Fencer | None = None
        self._dirty: asyncio.Event | None = None
        self._watches: list[LifecycleWatch] = []
        self._refresher: asyncio.Task[None] | None = None

    @property
    def fencer(self) -> Fencer:
        """The fencer of this host's VMs (use it from worker threads).

        :raises LocalError: before :meth:`open` or after :meth:`close`.
        """
        if self._fencer is None:
            raise LocalError(f"{self._owner} used before start()")
        return self._fencer

    async def open(self) -> None:
        """Connect every URI and build the fencer; changes are recorded from now on.

        :raises BackendError: no URI opens (:func:`connect_hypervisors`).
        """
        hypervisors = await asyncio.to_thread(connect_hypervisors, self._uris)
        self._fencer = Fencer(hypervisors, self._reboot_timeout)
        self._dirty = asyncio.Event()

    async def carry_out(self, operation: Operation, target: Target, rid: str) -> Response:
        """Carry out OFF, ON, REBOOT or STATUS on ``target`` through :attr:`fencer` (in a
        worker thread); the fencer's answer, or FAIL when it raises :class:`BackendError`
        (logged as an error with the request id ``rid``).

        :raises LocalError: before :meth:`open` or after :meth:`close`.
        :raises KeyError: another operation (a caller's bug).
        """
        method = _FENCER_METHODS[operation]
        action = getattr(self.fencer, method)
        try:
            response: Response = await asyncio.to_thread(action, target)
        except BackendError as exc:
            log.error("request %s: %s %s failed: %s", rid, method, target.domain, exc)
            return Response.FAIL
        return response

    async def watch(self) -> None:
        """Watch lifecycle events on every URI and start the refresh loop (after :meth:`open`).

        A URI whose watch cannot start (:class:`BackendError`) is logged as a warning; its VMs
        are then published only every ``refresh_interval`` seconds.
        """
        for uri in self._uris:
            watch = LifecycleWatch(uri, self._on_lifecycle, on_connected=self._on_connected)
            try:
                await watch.start()
            except BackendError as exc:
                log.warning("no lifecycle events from %s (%s); refreshing periodically", uri, exc)
                continue
            self._watches.append(watch)
        self._refresher = asyncio.get_running_loop().create_task(
            self._refresh_loop(), name=f"{self._owner} refresh"
        )

    def changed(self) -> None:
        """Publish soon (once, however often called before the loop wakes); no-op before
        :meth:`open`. Call it on the loop's thread."""
        if self._dirty is not None:
            self._dirty.set()

    async def stop(self) -> None:
        """End the refresh loop and every lifecycle watch; no ``publish`` call after it
        returns. The fencer stays open. Idempotent."""
        refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        for watch in self._watches:
            await watch.stop()
        self._watches.clear()

    async def close(self) -> None:
        """:meth:`stop`, then close the fencer's connections. Idempotent."""
        await self.stop()
        fencer, self._fencer = self._fencer, None
        self._dirty = None
        if fencer is not None:
            await asyncio.to_thread(fencer.close)

    async def _refresh_loop(self) -> None:
        dirty = self._dirty
        assert dirty is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh_interval):
                    await dirty.wait()
            dirty.clear()
            try:
                await self._publish()
            except Exception:
                log.exception("%s: publishing the local VMs failed", self._owner)

    def _on_lifecycle(self, event: LifecycleEvent) -> None:
        log.debug("lifecycle event %s", event)
        self.changed()

    def _on_connected(self, _uri: str) -> None:
        self.changed()
