"""off, on, reboot, status, devstatus and hostlist over a set of hypervisors.

Every answer of SUCCESS is checked against the hypervisor: off returns once the VM is shut
off (or gone), on and reboot once it runs. Steps are idempotent, so a step rerun after a
reconnect does no harm. Failures talking to libvirt raise
:class:`~fence_virt.errors.BackendError`; core logs them and answers FAIL.

The operations follow C's ``server/libvirt.c`` (c-suite-spec §6.1) except where C could
report success for a VM that still runs; each difference is named in the method's docstring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import libvirt

from fence_virt import Target
from fence_virt.errors import BackendError
from fence_virt.protocol import HostState, Response
from fence_virt_libvirt.domains import (
    AmbiguousName,
    Copies,
    DomainState,
    Located,
    domain_xml,
    list_all,
    locate,
    running_copies,
    state_name,
    state_on,
    wait_for_state,
)
from fence_virt_libvirt.hypervisor import Hypervisor

__all__ = ["DeadlinePassed", "Fencer"]

log = logging.getLogger("fence_virt_libvirt")

#: states in which a VM counts as running once started (Xen reports idle guests as blocked)
_RUNS = frozenset({DomainState.RUNNING, DomainState.BLOCKED})


def _is_off(state: int | None) -> bool:
    return state is None or state == DomainState.SHUTOFF


def _runs(state: int | None) -> bool:
    return state in _RUNS


def _died(state: int | None) -> bool:
    return state is None or state in (DomainState.SHUTOFF, DomainState.CRASHED)


def _never(_state: int | None) -> bool:
    return False


class DeadlinePassed(BackendError):
    """The request's deadline passed before a step that changes a VM's state: that step and
    every later one were not taken (the client has been answered FAIL already)."""


def _in_time(deadline: float | None, step: str) -> None:
    """Raise :class:`DeadlinePassed` if ``deadline`` (``time.monotonic()``) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlinePassed(f"the request's deadline passed before {step}: not done")


class Fencer:
    """Verified off/on/reboot/status/devstatus/hostlist over ``hypervisors`` (looked up in
    that order); safe to call from several threads at once.

    A VM may have a copy on several URIs (a migration leaves its definition behind, paused or
    shut off). The rule: off succeeds only once no copy any URI shows still runs; status is
    ON while any copy runs; a name that means different VMs (UUIDs) on different URIs is
    refused (FAIL, logged) unless the request names the UUID. See :func:`locate`. While a
    URI cannot answer, off and reboot act only on a VM seen running (or blocked) on a URI
    that answers: a copy found only paused may be the stale half of one running there.

    ``timeout`` (seconds) bounds each wait for "really shut off" and "really running". A
    target's ``deadline`` (``time.monotonic()`` seconds, set by core) is honoured: no
    destroy or start is issued after it, and no wait goes past it. Every method blocks
    (libvirt calls and polling): run it in a worker thread, never on the event loop. An
    unknown VM answers FAIL (and is logged); a hypervisor that cannot answer, or a VM that
    does not reach the promised state in time, raises
    :class:`~fence_virt.errors.BackendError`.
    """

    def __init__(self, hypervisors: Sequence[Hypervisor], timeout: float) -> None:
        self.hypervisors = tuple(hypervisors)
        self.timeout = timeout
        self._locks = _UuidLocks()

    def close(self) -> None:
        """Close every hypervisor's connection."""
        for hv in self.hypervisors:
            hv.close()

    @contextmanager
    def _find(self, target: Target, operation: str) -> Iterator[Copies | None]:
        """Every copy of the VM, looked up afresh while its UUID's lock is held; ``None`` if
        unknown or ambiguous (logged).

        Core serializes requests by the text they name a VM with, so ``reboot <uuid>`` and
        ``off <name>`` of one VM could otherwise interleave: the off would see the VM shut
        off half-way through the reboot, answer success, and the reboot would start it again.
        """
        try:
            first = locate(self.hypervisors, target.domain, by_uuid=target.by_uuid)
        except AmbiguousName as exc:
            log.error("%s %s: %s", operation, target.domain, exc)
            yield None
            return
        if first is None:
            where = ", ".join(hv.uri for hv in self.hypervisors)
            log.warning("%s %s: no such VM on %s", operation, target.domain, where)
            yield None
            return
        with self._locks.hold(first.uuid, target.deadline):
            # its copies and their states may have changed while we waited for the lock
            found = locate(self.hypervisors, first.uuid, by_uuid=True)
            if found is None:
                log.warning("%s %s: VM %s vanished meanwhile", operation, target.domain, first)
            yield found

    # off ------------------------------------------------------------------------------------

    def off(self, target: Target) -> Response:
        """SUCCESS once no copy of the VM runs (each shut off, or gone if transient); already
        off: SUCCESS."""
        with self._find(target, "off") as found:
            return Response.FAIL if found is None else self._off(found, target.deadline)

    def _off(self, found: Copies, deadline: float | None) -> Response:
        if not found.running:
            log.info("off: VM %s is already off", found)
            return Response.SUCCESS
        self._shut_off(found, deadline)
        return Response.SUCCESS

    def _shut_off(self, found: Copies, deadline: float | None) -> None:
        """Destroy every running copy, read each one back, then check that no copy runs (one
        may have been started, or migrated in, meanwhile): :class:`BackendError` otherwise."""
        _only_if_seen_running(found)
        failures: list[str] = []
        destroyed: list[Located] = []
        for copy in found.running:
            _in_time(deadline, f"destroying VM {copy}")
            log.info("destroying VM %s (was %s)", copy, state_name(copy.state))
            try:
                _destroy(copy, deadline)
            except BackendError as exc:
                failures.append(str(exc))  # the other copies are still destroyed
                continue
            destroyed.append(copy)
        for copy in destroyed:
            try:
                wait_for_state(
                    copy,
                    _is_off,
                    hopeless=_never,
                    timeout=self.timeout,
                    goal="shut off",
                    deadline=deadline,
                )
            except BackendError as exc:
                failures.append(str(exc))
            else:
                log.info("VM %s is off", copy)
        if failures:
            raise BackendError("; ".join(failures))
        still = running_copies(self.hypervisors, found.uuid)
        if still:
            where = ", ".join(f"{c.hypervisor.uri} ({state_name(c.state)})" for c in still)
            raise BackendError(
                f"VM {found.uuid} still runs on {where} after its copies were destroyed"
            )

    # on -------------------------------------------------------------------------------------

    def on(self, target: Target) -> Response:
        """SUCCESS once the VM runs; a copy in any state but shut off counts as on already
        (as C); otherwise the first copy in URI order is started."""
        with self._find(target, "on") as found:
            return Response.FAIL if found is None else self._on(found, target.deadline)

    def _on(self, found: Copies, deadline: float | None) -> Response:
        if found.running:
            log.info("on: VM %s is already on", found)
            return Response.SUCCESS
        self._power_on(found.first, None, deadline)
        return Response.SUCCESS

    def _power_on(self, copy: Located, xml: str | None, deadline: float | None) -> None:
        _in_time(deadline, f"starting VM {copy}")
        log.info("starting VM %s", copy)
        copy.hypervisor.call(lambda conn: _start_unless_active(conn, copy.uuid, xml, deadline))
        wait_for_state(
            copy, _runs, hopeless=_died, timeout=self.timeout, goal="running", deadline=deadline
        )
        log.info("VM %s is running", copy)

    # reboot ---------------------------------------------------------------------------------

    def reboot(self, target: Target) -> Response:
        """Destroy every running copy, wait until each is shut off, start the first of them
        again (a transient VM from its saved XML), wait until it runs: SUCCESS only then. A
        shut-off VM stays off (SUCCESS, as C). A VM that is off but does not start again
        raises :class:`BackendError` (C answers success)."""
        with self._find(target, "reboot") as found:
            return Response.FAIL if found is None else self._reboot(found, target.deadline)

    def _reboot(self, found: Copies, deadline: float | None) -> Response:
        if not found.running:
            log.info("reboot: VM %s is off; left off", found)
            return Response.SUCCESS
        restart = found.running[0]
        xml = None
        if not restart.persistent:
            # with its secrets (e.g. VNC passwords), so the re-created transient VM keeps them
            xml = domain_xml(restart.hypervisor, restart.uuid, inactive=True, secure=True)
            if xml is None:
                raise BackendError(f"VM {restart} vanished before its XML could be saved")
        self._shut_off(found, deadline)
        try:
            self._power_on(restart, xml, deadline)
        except BackendError as exc:
            raise BackendError(f"VM {restart} is off but did not start again: {exc}") from exc
        return Response.SUCCESS

    # status, devstatus, hostlist ------------------------------------------------------------

    def status(self, target: Target) -> Response:
        """SUCCESS (on) if any copy is in a state but shut off, OFF if every copy is shut off,
        FAIL if unknown or ambiguous."""
        with self._find(target, "status") as found:
            return Response.FAIL if found is None else self._status(found)

    def _status(self, found: Copies) -> Response:
        return Response.SUCCESS if found.running else Response.OFF

    def devstatus(self) -> Response:
        """SUCCESS if every URI answers one RPC (reconnecting once if needed), else FAIL."""
        healthy = True
        for hv in self.hypervisors:
            try:
                hv.call(lambda conn: conn.getLibVersion())
            except BackendError as exc:
                log.error("monitor: %s", exc)
                healthy = False
        return Response.SUCCESS if healthy else Response.FAIL

    def hostlist(self) -> list[HostState]:
        """Every URI's domains, sorted by name case-insensitively (see :func:`list_all`)."""
        return list_all(self.hypervisors)


def _only_if_seen_running(found: Copies) -> None:
    """With a URI that cannot answer, a VM may be shut off only if a copy of it was seen
    running (or blocked) on one that can: :class:`BackendError` otherwise, nothing done.

    A copy that is merely paused (a migration's source or target), crashed or shutting down
    may be the stale half of a VM that runs behind the silent URI: destroying it and
    answering success would leave the VM running.
    """
    if found.unreachable and not any(_runs(copy.state) for copy in found.copies):
        raise BackendError(
            f"VM {found} runs on no URI that answers, and it may run where a URI cannot "
            f"answer ({'; '.join(found.unreachable)}): nothing done"
        )


class _UuidLocks:
    """One thread lock per domain UUID, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, vm_uuid: str, deadline: float | None = None) -> Iterator[None]:
        """Hold ``vm_uuid``'s lock; :class:`DeadlinePassed` if it is not free by
        ``deadline`` (``time.monotonic()`` seconds)."""
        with self._guard:
            lock, users = self._locks.get(vm_uuid, (threading.Lock(), 0))
            self._locks[vm_uuid] = (lock, users + 1)
        try:
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if not lock.acquire(timeout=wait):
                raise DeadlinePassed(
                    f"VM {vm_uuid} was busy with another operation until the request's deadline"
                )
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                lock, users = self._locks[vm_uuid]
                if users == 1:
                    del self._locks[vm_uuid]
                else:
                    self._locks[vm_uuid] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


def _destroy(copy: Located, deadline: float | None) -> None:
    copy.hypervisor.call(lambda conn: _destroy_unless_off(conn, copy.uuid, deadline))


def _destroy_unless_off(conn: Any, vm_uuid: str, deadline: float | None) -> None:
    """Destroy the VM unless it is off; run in :meth:`Hypervisor.call`, so possibly again
    after a reconnect that took long: the deadline is checked right before the destroy."""
    try:
        dom = conn.lookupByUUIDString(vm_uuid)
        _in_time(deadline, f"destroying VM {vm_uuid}")
        dom.destroy()
    except libvirt.libvirtError:
        # already off (a rerun after reconnect, or a race with the guest shutting down)
        if not _is_off(state_on(conn, vm_uuid)):
            raise


def _start_unless_active(conn: Any, vm_uuid: str, xml: str | None, deadline: float | None) -> None:
    """Start the VM unless it is active; the deadline is checked right before the start."""
    state = state_on(conn, vm_uuid)
    if state is None:
        if xml is None:
            raise BackendError(f"VM {vm_uuid} is no longer defined; cannot start it")
        _in_time(deadline, f"starting VM {vm_uuid}")
        conn.createXML(xml, 0)
    elif state == DomainState.SHUTOFF:
        dom = conn.lookupByUUIDString(vm_uuid)
        _in_time(deadline, f"starting VM {vm_uuid}")
        dom.create()
