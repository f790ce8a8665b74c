"""Find a VM across hypervisors, read its state or XML, list VMs, wait for a state.

Every step looks the VM up again by UUID on the current connection, so a step can be rerun
after a reconnect and a VM renamed meanwhile is still the same VM. Whether a request's domain
field is a UUID is decided by core's one rule, :func:`fence_virt.types.domain_uuid`.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import libvirt

from fence_virt.errors import BackendError
from fence_virt.protocol import HostState
from fence_virt.types import domain_uuid
from fence_virt_libvirt.hypervisor import Hypervisor

__all__ = [
    "AmbiguousName",
    "Copies",
    "DomainState",
    "Located",
    "current_state",
    "domain_xml",
    "list_all",
    "list_domains",
    "locate",
    "running_copies",
    "state_name",
    "state_on",
    "wait_for_state",
]

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
    """``"running"``, ``"shutoff"``, ... for logs; ``"gone"`` for ``None``, ``"state N"`` if
    libvirt sent a number this module does not know."""
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


class AmbiguousName(BackendError):
    """A name that means different VMs (different UUIDs) on different URIs.

    Acting on one of them could leave the other running while answering success, and
    guessing which one the cluster meant is not ours to do: the request must name a UUID.
    """

    def __init__(self, name: str, copies: Sequence[Located]) -> None:
        seen = ", ".join(f"{c.uuid} on {c.hypervisor.uri} ({state_name(c.state)})" for c in copies)
        super().__init__(
            f"name {name} means {len({c.uuid for c in copies})} different VMs: {seen}; "
            "refused (address the VM by UUID)"
        )
        self.name = name
        self.copies = tuple(copies)


@dataclass(frozen=True)
class Copies:
    """Every copy of one VM (one UUID) the hypervisors hold, in URI order; never empty.

    A VM has several copies after a migration that left its definition behind (shut off or
    paused on the source), or during one (paused on the target).
    """

    uuid: str
    copies: tuple[Located, ...]
    #: why each URI that could not answer did not (the VM may have a copy there too)
    unreachable: tuple[str, ...] = ()

    @property
    def running(self) -> tuple[Located, ...]:
        """The copies in any state but shut off: each still holds the VM's memory and disks."""
        return tuple(c for c in self.copies if c.state != DomainState.SHUTOFF)

    @property
    def first(self) -> Located:
        """The first running copy in URI order, else the first copy."""
        return (self.running or self.copies)[0]

    def __str__(self) -> str:
        where = ", ".join(f"{c.hypervisor.uri} ({state_name(c.state)})" for c in self.copies)
        return f"{self.copies[0].name} ({self.uuid}) on {where}"


def _probe_all(
    hypervisors: Sequence[Hypervisor], key: str, is_uuid: bool, failures: dict[str, str]
) -> list[Located]:
    """``key`` looked up on every URI not in ``failures``; a URI that cannot answer is added
    to ``failures`` (URI -> why)."""
    found: list[Located] = []
    for hv in hypervisors:
        if hv.uri in failures:
            continue
        try:
            seen = hv.call(lambda conn: _probe(conn, key, is_uuid))
        except BackendError as exc:
            failures[hv.uri] = str(exc)
            continue
        if seen is not None:
            found.append(Located(hv, *seen))
    return found


def locate(
    hypervisors: Sequence[Hypervisor], domain: str, *, by_uuid: bool = False
) -> Copies | None:
    """Every copy of the VM ``domain`` names, on every URI; ``None`` if no URI knows it.

    ``domain`` is a name, or a UUID as :func:`fence_virt.types.domain_uuid` reads it (with
    ``by_uuid``, the request's RF_UUID flag). A name is looked up by name on every URI, then
    the UUID it means by UUID on every URI, so a copy renamed elsewhere is found too; a UUID
    is looked up by UUID only. C looks a name up by name and takes the first URI that
    knows it (c-suite-spec §6.1).

    :raises AmbiguousName: the name means different UUIDs on different URIs (never for a
        UUID: another VM that shares the name is another VM).
    :raises BackendError: a URI cannot answer and every copy found elsewhere is shut off
        (the VM might run there, so the answer is unknowable). With a copy in another state
        found, the URIs that cannot answer are named in :attr:`Copies.unreachable`.
    """
    failures: dict[str, str] = {}
    vm_uuid = domain_uuid(domain, by_uuid=by_uuid)
    if vm_uuid is None:
        named = _probe_all(hypervisors, domain, False, failures)
        if len({c.uuid for c in named}) > 1:
            raise AmbiguousName(domain, named)
        vm_uuid = named[0].uuid if named else None
    copies = [] if vm_uuid is None else _probe_all(hypervisors, vm_uuid, True, failures)
    if failures and all(c.state == DomainState.SHUTOFF for c in copies):
        raise BackendError(f"cannot tell where VM {domain} is: {'; '.join(failures.values())}")
    if not copies or vm_uuid is None:
        return None
    return Copies(vm_uuid, tuple(copies), tuple(failures.values()))


def running_copies(hypervisors: Sequence[Hypervisor], vm_uuid: str) -> list[Located]:
    """The copies of ``vm_uuid`` in any state but shut off, on the URIs that answer now.

    For a last check after acting on a VM :func:`locate` found: a URI that cannot answer is
    skipped here, since :func:`locate` already decided the VM could be acted on without it.
    """
    found = _probe_all(hypervisors, vm_uuid, True, {})
    return [c for c in found if c.state != DomainState.SHUTOFF]


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
    deadline: float | None = None,
) -> None:
    """Poll ``found``'s state until ``done(state)``: the read-back behind every success.

    :param timeout: seconds to wait at most.
    :param deadline: the request's deadline (``time.monotonic()`` seconds), if sooner.
    :raises BackendError: ``hopeless(state)``, or the time ran out; the message names the
        state last read.
    """
    give_up = time.monotonic() + timeout
    late = f" after {timeout:g} s"
    if deadline is not None and deadline < give_up:
        give_up, late = deadline, " at the request's deadline"
    delay = _FIRST_POLL
    while True:
        state = current_state(found.hypervisor, found.uuid)
        if done(state):
            return
        if hopeless(state) or time.monotonic() >= give_up:
            why = "" if hopeless(state) else late
            raise BackendError(f"VM {found} did not become {goal}: it is {state_name(state)}{why}")
        time.sleep(max(0.0, min(delay, give_up - time.monotonic())))
        delay = min(delay * 2, _MAX_POLL)


def _list_on(conn: Any) -> list[HostState]:
    states = []
    for dom in conn.listAllDomains(0):
        try:
            states.append(HostState(domain=dom.name(), uuid=dom.UUIDString(), state=dom.state()[0]))
        except libvirt.libvirtError as exc:
            # undefined between the listing and the question: it is not there any more
            if not _no_domain(exc):
                raise
    return states


def list_domains(hypervisor: Hypervisor) -> list[HostState]:
    """Every domain (active and inactive) of one URI, in libvirt's order, with its raw
    ``virDomainState``; :class:`BackendError` if the URI cannot answer."""
    return hypervisor.call(_list_on)


def list_all(hypervisors: Sequence[Hypervisor]) -> list[HostState]:
    """Every URI's domains concatenated, sorted by name case-insensitively (as C's host list;
    stable, so the same name on two URIs keeps URI order). C overwrote earlier URIs' entries
    (c-suite-spec §6.1); here each URI's domains appear. :class:`BackendError` if any URI
    cannot answer: a partial list would hide VMs."""
    states = [s for hv in hypervisors for s in list_domains(hv)]
    return sorted(states, key=lambda s: s.domain.casefold())


def domain_xml(
    hypervisor: Hypervisor, vm_uuid: str, *, inactive: bool = False, secure: bool = False
) -> str | None:
    """The domain's XML description, or ``None`` if ``vm_uuid`` is not defined there.

    :param vm_uuid: lower-case hyphenated UUID (e.g. from :func:`list_domains` or an event).
    :param inactive: the definition used at the next start instead of the running one
        (``VIR_DOMAIN_XML_INACTIVE``). Listeners looking for a running domain's sockets want
        the live XML, the default.
    :param secure: include secrets such as VNC passwords (``VIR_DOMAIN_XML_SECURE``); only
        for re-creating the domain, never for logs.
    :raises BackendError: the URI cannot answer or libvirt refused.
    """
    flags = (libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0) | (
        libvirt.VIR_DOMAIN_XML_SECURE if secure else 0
    )

    def read(conn: Any) -> str | None:
        try:
            return str(conn.lookupByUUIDString(vm_uuid).XMLDesc(flags))
        except libvirt.libvirtError as exc:
            if _no_domain(exc):
                return None
            raise

    return hypervisor.call(read)
