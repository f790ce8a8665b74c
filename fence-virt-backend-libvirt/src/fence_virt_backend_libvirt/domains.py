"""Find a VM across hypervisors, read its state, wait for a state.

Every step looks the VM up again by UUID on the current connection, so a step can be rerun
after a reconnect and a VM renamed meanwhile is still the same VM.
"""

from __future__ import annotations

import enum
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import libvirt

from fence_virt.errors import BackendError
from fence_virt_backend_libvirt.hypervisor import Hypervisor

__all__ = [
    "DomainState",
    "Located",
    "current_state",
    "locate",
    "lookup_key",
    "state_name",
    "state_on",
    "wait_for_state",
]

_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
#: first poll after a state change request; doubles up to _MAX_POLL (seconds)
_FIRST_POLL = 0.002
_MAX_POLL = 0.1


class DomainState(enum.IntEnum):
    """libvirt's virDomainState numbers (sent raw in host lists)."""

    NOSTATE = libvirt.VIR_DOMAIN_NOSTATE
    RUNNING = libvirt.VIR_DOMAIN_RUNNING
    BLOCKED = libvirt.VIR_DOMAIN_BLOCKED
    PAUSED = libvirt.VIR_DOMAIN_PAUSED
    SHUTDOWN = libvirt.VIR_DOMAIN_SHUTDOWN
    SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF
    CRASHED = libvirt.VIR_DOMAIN_CRASHED
    PMSUSPENDED = libvirt.VIR_DOMAIN_PMSUSPENDED


def state_name(state: int | None) -> str:
    if state is None:
        return "gone"
    try:
        return DomainState(state).name.lower()
    except ValueError:
        return f"state {state}"


@dataclass(frozen=True)
class Located:
    """Where a VM was found and what it looked like then."""

    hypervisor: Hypervisor
    name: str
    uuid: str
    state: int
    persistent: bool

    def __str__(self) -> str:
        return f"{self.name} ({self.uuid}) on {self.hypervisor.uri}"


def lookup_key(domain: str, by_uuid: bool) -> tuple[str, bool]:
    """``(key, is_uuid)``: canonical UUID text is looked up by UUID (as C), and so is any
    UUID form when the request carries the UUID flag; everything else is a name."""
    if _CANONICAL_UUID.fullmatch(domain):
        return domain.lower(), True
    if by_uuid:
        try:
            return str(uuid.UUID(domain)), True
        except ValueError:
            pass
    return domain, False


def _no_domain(exc: libvirt.libvirtError) -> bool:
    return bool(exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN)


def _describe(dom: Any) -> tuple[str, str, int, bool]:
    return dom.name(), dom.UUIDString(), dom.state()[0], bool(dom.isPersistent())


def _probe(conn: Any, key: str, is_uuid: bool) -> tuple[str, str, int, bool] | None:
    try:
        dom = conn.lookupByUUIDString(key) if is_uuid else conn.lookupByName(key)
        return _describe(dom)
    except libvirt.libvirtError as exc:
        if _no_domain(exc):
            return None
        raise


def locate(hypervisors: Sequence[Hypervisor], domain: str, by_uuid: bool) -> Located | None:
    """The VM's first *active* copy in URI order, else its first copy; ``None`` if unknown.

    A hypervisor that cannot answer makes the answer unknowable unless an active copy was
    found: the VM might run there, so :class:`BackendError` is raised instead of guessing.
    """
    key, is_uuid = lookup_key(domain, by_uuid)
    inactive: Located | None = None
    failures: list[str] = []
    for hv in hypervisors:
        try:
            seen = hv.call(lambda conn: _probe(conn, key, is_uuid))
        except BackendError as exc:
            failures.append(str(exc))
            continue
        if seen is None:
            continue
        found = Located(hv, *seen)
        if found.state != DomainState.SHUTOFF:
            return found
        inactive = inactive or found
    if failures:
        raise BackendError(f"cannot tell where VM {domain} is: {'; '.join(failures)}")
    return inactive


def state_on(conn: Any, vm_uuid: str) -> int | None:
    """The VM's state on ``conn``, or ``None`` if it is not defined there (any more)."""
    try:
        return int(conn.lookupByUUIDString(vm_uuid).state()[0])
    except libvirt.libvirtError as exc:
        if _no_domain(exc):
            return None
        raise


def current_state(hv: Hypervisor, vm_uuid: str) -> int | None:
    """The VM's state now, or ``None`` if the hypervisor no longer knows it (transient, off)."""
    return hv.call(lambda conn: state_on(conn, vm_uuid))


def wait_for_state(
    found: Located,
    done: Callable[[int | None], bool],
    *,
    hopeless: Callable[[int | None], bool],
    timeout: float,
    goal: str,
) -> None:
    """Poll until ``done(state)``; :class:`BackendError` if ``hopeless(state)`` or time runs out."""
    deadline = time.monotonic() + timeout
    delay = _FIRST_POLL
    while True:
        state = current_state(found.hypervisor, found.uuid)
        if done(state):
            return
        if hopeless(state) or time.monotonic() >= deadline:
            why = "" if hopeless(state) else f" after {timeout:g} s"
            raise BackendError(f"VM {found} did not become {goal}: it is {state_name(state)}{why}")
        time.sleep(delay)
        delay = min(delay * 2, _MAX_POLL)
