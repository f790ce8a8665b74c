"""Fencing through an :class:`~fence_virt_backend_ovirt.engine.Engine`: every operation,
verified by reading the VM's status back.

Invariants:

* SUCCESS for off only once the engine reports ``down``; for on and reboot only once it
  reports ``up``; status answers from the engine's word only, and a status the engine
  cannot vouch for (:data:`~fence_virt_backend_ovirt.engine.Power.UNKNOWN`) is a failure,
  never a guess.
* A VM is named by its exact, case-sensitive name or by its UUID; after the lookup every
  step uses the engine's id. With ``cluster`` set, a VM of another cluster is refused.
* Operations on one VM are serialized here by engine id (core serializes by name or by UUID
  only, and cannot tell they are the same VM).
* Waiting holds no connection: the status is polled after 0.1, 0.2, 0.3 s, then every
  0.5 s, each poll one short request, so fences of other VMs never queue behind a poll.
* reboot = off, then on; a VM that is off stays off (as C: reboot does not power on nodes
  that are off), answering SUCCESS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from fence_virt import Target
from fence_virt.errors import BackendError
from fence_virt.protocol import HostState, Response
from fence_virt_backend_ovirt.engine import Engine, EngineRefused, Power, Vm, power_of

__all__ = ["POLL_INTERVALS", "Fencer", "libvirt_state"]

log = logging.getLogger("fence_virt_backend_ovirt")

#: seconds between status polls; the last repeats
POLL_INTERVALS = (0.1, 0.2, 0.3, 0.5)
#: statuses from which the engine's start action powers the VM on
_STARTABLE = frozenset({"down", "paused", "suspended"})

# the raw virDomainState numbers host lists carry (the C client prints "on" for 1 only)
_NOSTATE, _RUNNING, _PAUSED, _SHUTDOWN, _SHUTOFF, _PMSUSPENDED = 0, 1, 3, 4, 5, 7
_STATE_OF = {
    "up": _RUNNING,
    "migrating": _RUNNING,
    "powering_up": _RUNNING,
    "wait_for_launch": _RUNNING,
    "reboot_in_progress": _RUNNING,
    "restoring_state": _RUNNING,
    "paused": _PAUSED,
    "powering_down": _SHUTDOWN,
    "saving_state": _SHUTDOWN,
    "down": _SHUTOFF,
    "suspended": _PMSUSPENDED,
}


def libvirt_state(status: str) -> int:
    """The virDomainState number a host list shows for an engine status (0, NOSTATE, for
    the statuses the engine cannot vouch for)."""
    return _STATE_OF.get(status, _NOSTATE)


class _KeyedLocks:
    """One lock per VM id, created on first use (VMs are few; entries are kept)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class Fencer:
    """The operations of :class:`fence_virt.Backend` over an engine; blocking, thread-safe.

    :param engine: the adapter (:class:`~fence_virt_backend_ovirt.sdk.SdkEngine`).
    :param power_timeout: seconds off and on wait for ``down`` / ``up``.
    :param cluster: only this cluster's VMs (its name), or every VM the account sees.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        power_timeout: float,
        cluster: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._power_timeout = power_timeout
        self._cluster = cluster
        self._cluster_id: str | None = None
        self._sleep = sleep
        self._clock = clock
        self._locks = _KeyedLocks()

    def start(self) -> None:
        """Log in, read the API root and find the cluster.

        :raises fence_virt.errors.BackendError: unreachable, refused, or no such cluster.
        """
        self._engine.check()
        if self._cluster is not None:
            found = self._engine.cluster_id(self._cluster)
            if found is None:
                raise BackendError(
                    f"no cluster called {self._cluster!r} is visible to {self._engine.describe()}"
                )
            self._cluster_id = found

    # -- lookup ---------------------------------------------------------------------------

    def _lookup(self, target: Target) -> Vm:
        vm_uuid = target.uuid
        vm = self._engine.get(vm_uuid) if vm_uuid is not None else self._engine.find(target.domain)
        if vm is None:
            raise BackendError(
                f"no VM {target.domain!r} is visible to {self._engine.describe()}"
                + ("" if vm_uuid is not None else " (names are case-sensitive)")
            )
        if self._cluster_id is not None and vm.cluster != self._cluster_id:
            raise BackendError(f"VM {vm.name} ({vm.id}) is not in cluster {self._cluster}")
        return vm

    def _read(self, vm: Vm) -> Vm:
        again = self._engine.get(vm.id)
        if again is None:
            raise BackendError(f"VM {vm.name} ({vm.id}) disappeared")
        return again

    # -- operations -----------------------------------------------------------------------

    def status(self, target: Target) -> Response:
        vm = self._lookup(target)
        power = power_of(vm.status)
        if power is Power.UNKNOWN:
            raise BackendError(_cannot_vouch(vm))
        return Response.SUCCESS if power is Power.ON else Response.OFF

    def off(self, target: Target) -> Response:
        vm = self._lookup(target)
        with self._locks(vm.id):
            self._power_off(self._read(vm))
        return Response.SUCCESS

    def on(self, target: Target) -> Response:
        vm = self._lookup(target)
        with self._locks(vm.id):
            self._power_on(self._read(vm))
        return Response.SUCCESS

    def reboot(self, target: Target) -> Response:
        vm = self._lookup(target)
        with self._locks(vm.id):
            vm = self._read(vm)
            if vm.status == "down":
                log.info("reboot %s: VM is off and stays off", vm.name)
                return Response.SUCCESS
            self._power_on(self._power_off(vm))
        return Response.SUCCESS

    def devstatus(self) -> Response:
        self._engine.check()
        return Response.SUCCESS

    def hostlist(self) -> Sequence[HostState]:
        vms = self._engine.vms(self._cluster_id)
        vms.sort(key=lambda vm: (vm.name.casefold(), vm.name))
        return [HostState(vm.name, vm.id, libvirt_state(vm.status)) for vm in vms]

    # -- steps ----------------------------------------------------------------------------

    def _power_off(self, vm: Vm) -> Vm:
        """Stop ``vm`` (as just read) unless it is down, then wait for ``down``.

        :returns: the VM as last read, down.
        """
        if vm.status == "down":
            return vm
        log.info("stopping VM %s (%s), status %s", vm.name, vm.id, vm.status)
        try:
            self._engine.stop(vm.id)
        except EngineRefused:
            again = self._read(vm)
            if again.status == "down":  # it went down by itself meanwhile
                return again
            raise
        return self._wait(vm, lambda now: now.status == "down", "down")

    def _power_on(self, vm: Vm) -> None:
        """Start ``vm`` (as just read) unless it is up, then wait for ``up``; one start per
        call."""
        if vm.status == "up":
            return
        started = False

        def up(now: Vm) -> bool:
            nonlocal started
            if now.status == "up":
                return True
            if not started and power_of(now.status) is Power.UNKNOWN:
                raise BackendError(_cannot_vouch(now))
            if not started and now.status in _STARTABLE:
                log.info("starting VM %s (%s), status %s", now.name, now.id, now.status)
                self._start(now)
                started = True
            return False

        self._wait(vm, up, "up")

    def _start(self, vm: Vm) -> None:
        try:
            self._engine.start(vm.id)
        except EngineRefused:
            if self._read(vm).status != "up":
                raise

    def _wait(self, vm: Vm, done: Callable[[Vm], bool], wanted: str) -> Vm:
        """Poll ``vm`` until ``done(vm)`` (checked first on ``vm`` as given): the VM as last
        read; BackendError after the power timeout."""
        deadline = self._clock() + self._power_timeout
        polls = 0
        now = vm  # as the caller last read it
        while not done(now):
            if self._clock() >= deadline:
                raise BackendError(
                    f"VM {vm.name} ({vm.id}) is still {now.status or 'without status'} "
                    f"{self._power_timeout:g} s later, not {wanted}"
                )
            self._sleep(POLL_INTERVALS[min(polls, len(POLL_INTERVALS) - 1)])
            polls += 1
            now = self._read(vm)
        return now


def _cannot_vouch(vm: Vm) -> str:
    status = vm.status or "without a status"
    return f"VM {vm.name} ({vm.id}) is {status}: the engine cannot vouch for its power state"
