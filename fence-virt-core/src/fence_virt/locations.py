"""Where each VM runs in a cluster of hosts: the pure location model of distributed backends.

A distributed backend (corosync CPG, a message bus) learns from its transport which hosts
are members and which VMs each host reports; it feeds both into :class:`Locations` and asks
it, for a request, who must act. No I/O and no clock of its own: every call that records
something takes ``now`` (seconds, any monotonic or wall clock, as long as it is one clock),
so the model is replayable in tests and shared by every backend that needs it.

The rules (c-suite-spec §6.2 gives C's, which this model makes stricter):

* **Ownership.** A VM may be reported by several hosts (defined on several, or a stale
  report from the host it left by live migration). The owner is the member that most
  recently reported it *active* (any state but shut off); if no member reports it active,
  the member holding a shut-off copy with the lowest host id. C keeps one entry per VM
  and lets the last report win, even a shut-off copy over a running one.
* **Migration.** A host that reports a VM active makes every earlier active report of the
  same VM by another host stale, and a stale report never wins over a current one, even a
  shut-off copy: after a live migration the new owner acts, also once the VM is off.
* **Departed hosts.** Reports of a host that left are kept, marked with when it left; a
  VM whose best report comes from a departed host is :attr:`Placement.DEPARTED` (C forgets
  them, so its highest member then answers "fenced" at once). Whether such a VM may be
  reported fenced is the backend's decision (its host must be known to be fenced).
* **Unknown.** A VM no host ever reported is :attr:`Placement.UNKNOWN`: a failure, never
  success (C's highest member answers success).

Hosts are named by integers (corosync node ids); VMs by name and UUID (lower-case,
hyphenated). Not thread-safe: use it from one thread (the event loop).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["SHUTOFF", "HostView", "Located", "Locations", "Placement", "Report"]

#: libvirt's VIR_DOMAIN_SHUTOFF: the one state in which a VM counts as not running
SHUTOFF = 5


class Placement(enum.Enum):
    """Who holds a VM, as far as the reports tell."""

    #: this host holds it (and no other member holds it active, or this host does too)
    LOCAL = "local"
    #: another member holds it: that member acts
    REMOTE = "remote"
    #: last reported by a host that has left: fenced only once that host is known fenced
    DEPARTED = "departed"
    #: no host ever reported it
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Report:
    """One host's word about one VM, e.g. ``Report(3, "vm1", "1111...", 1, 12.5)``."""

    host: int
    name: str
    uuid: str
    #: raw libvirt state (1 running, 3 paused, 5 shut off, ...)
    state: int
    #: ``now`` of the call that recorded it
    seen: float
    #: a later active report by another host superseded this one (migration)
    stale: bool = False

    @property
    def active(self) -> bool:
        return self.state != SHUTOFF and not self.stale


@dataclass(frozen=True, slots=True)
class HostView:
    """A host the model has heard of: member now, or when it left (``None`` while member)."""

    host: int
    member: bool
    #: ``now`` when it was last seen joining, reporting, or in a membership list
    last_seen: float
    #: ``now`` of the membership change that removed it; ``None`` while it is a member
    left_at: float | None = None


@dataclass(frozen=True, slots=True)
class Located:
    """The answer to "who holds this VM?"."""

    placement: Placement
    #: the owner's host id (``None`` for UNKNOWN)
    owner: int | None = None
    #: the report that decided it (``None`` for UNKNOWN)
    report: Report | None = None
    #: when the owner left (DEPARTED only)
    left_at: float | None = None

    def __str__(self) -> str:
        if self.placement is Placement.UNKNOWN:
            return "unknown to every member"
        state = "" if self.report is None else f" (state {self.report.state})"
        return f"{self.placement.value} on host {self.owner}{state}"


@dataclass
class Locations:
    """VM -> reports per host, and host membership, seen from host ``local``."""

    local: int
    _reports: dict[tuple[str, int], Report] = field(default_factory=dict)
    _hosts: dict[int, HostView] = field(default_factory=dict)

    # membership --------------------------------------------------------------------------------

    def membership(self, members: Iterable[int], now: float) -> tuple[set[int], set[int]]:
        """Record the current member set; returns ``(joined, left)`` host ids."""
        current = set(members)
        before = self.members()
        for host in current:
            self._hosts[host] = HostView(host, member=True, last_seen=now)
        for host in before - current:
            old = self._hosts[host]
            self._hosts[host] = HostView(host, member=False, last_seen=old.last_seen, left_at=now)
        return current - before, before - current

    def members(self) -> set[int]:
        """Host ids that are members now."""
        return {h.host for h in self._hosts.values() if h.member}

    def host(self, host: int) -> HostView | None:
        return self._hosts.get(host)

    def hosts(self) -> list[HostView]:
        """Every host heard of, by id."""
        return [self._hosts[h] for h in sorted(self._hosts)]

    def highest_member(self) -> int | None:
        """The member with the highest id (C's ``high_id``), ``None`` with no members."""
        members = self.members()
        return max(members) if members else None

    # reports -----------------------------------------------------------------------------------

    def report(self, host: int, name: str, uuid: str, state: int, now: float) -> int | None:
        """Record that ``host`` holds the VM in ``state``.

        :returns: the previous owner's host id when this report moves the VM to another
            host (for the log), else ``None``.
        """
        uuid = uuid.lower()
        before = self._owner_of(self._candidates(uuid=uuid, name=name))
        record = Report(host, name, uuid, state, now)
        self._reports[(uuid, host)] = record
        if record.active:
            self._supersede(record)
        view = self._hosts.get(host)
        if view is not None and view.member:
            self._hosts[host] = HostView(host, member=True, last_seen=now)
        after = self._owner_of(self._candidates(uuid=uuid, name=name))
        if before is not None and after is not None and before.host != after.host:
            return before.host
        return None

    def replace_host(
        self, host: int, vms: Iterable[tuple[str, str, int]], now: float
    ) -> list[Report]:
        """``host``'s complete list of ``(name, uuid, state)``: reports it no longer
        includes are dropped (only a host's own full list can say so). Returns the dropped."""
        kept = set()
        for name, uuid, state in vms:
            self.report(host, name, uuid, state, now)
            kept.add(uuid.lower())
        gone = [r for (uuid, h), r in self._reports.items() if h == host and uuid not in kept]
        for record in gone:
            del self._reports[(record.uuid, host)]
        return gone

    def reports(self, host: int | None = None) -> list[Report]:
        """Every report (of ``host`` only, if given), by UUID then host."""
        return [r for _key, r in sorted(self._reports.items()) if host is None or r.host == host]

    def _supersede(self, record: Report) -> None:
        for (uuid, host), other in list(self._reports.items()):
            same_vm = uuid == record.uuid and host != record.host
            if same_vm and other.active and other.seen <= record.seen:
                self._reports[(uuid, host)] = Report(
                    other.host, other.name, other.uuid, other.state, other.seen, stale=True
                )

    # decisions ---------------------------------------------------------------------------------

    def locate(self, key: str, *, by_uuid: bool) -> Located:
        """Who holds the VM named ``key`` (a UUID when ``by_uuid``, else a name).

        Members are preferred to departed hosts; among them, an active report to a shut-off
        one; among those, the newest. A VM held only in shut-off copies by several members
        goes to the lowest host id among them, so that exactly one acts.
        """
        candidates = (
            self._candidates(uuid=key.lower(), name=None)
            if by_uuid
            else self._candidates(uuid=None, name=key)
        )
        best = self._owner_of(candidates)
        if best is None:
            return Located(Placement.UNKNOWN)
        view = self._hosts.get(best.host)
        if view is None or not view.member:
            left_at = view.left_at if view is not None else None
            return Located(Placement.DEPARTED, best.host, best, left_at)
        placement = Placement.LOCAL if best.host == self.local else Placement.REMOTE
        return Located(placement, best.host, best)

    def active_on_departed(self, uuid: str) -> Located | None:
        """The departed host that last reported VM ``uuid`` active, if any: a VM found shut off
        here may still run there, so it is only off once that host is known to be fenced."""
        for report in self.reports():
            view = self._hosts.get(report.host)
            departed = view is not None and not view.member
            if report.uuid == uuid.lower() and report.active and departed:
                assert view is not None
                return Located(Placement.DEPARTED, report.host, report, view.left_at)
        return None

    def _candidates(self, *, uuid: str | None, name: str | None) -> list[Report]:
        return [
            r
            for r in self._reports.values()
            if (uuid is not None and r.uuid == uuid) or (name is not None and r.name == name)
        ]

    def _owner_of(self, candidates: list[Report]) -> Report | None:
        if not candidates:
            return None

        def member(r: Report) -> bool:
            view = self._hosts.get(r.host)
            return view is not None and view.member

        def rank(r: Report) -> tuple[bool, bool, bool, float, int]:
            # member first, then not superseded, then active, then newest; ties (several
            # shut-off copies) go to the lowest host id
            newest = r.seen if r.active else 0.0
            return (member(r), not r.stale, r.active, newest, -r.host)

        return max(candidates, key=rank)
