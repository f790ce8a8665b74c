"""Simulated hardware for the in-memory backend: VMs with a power state and a boot counter.

The backend presses buttons here and reads the state back, as a real backend asks its
hypervisor; tests read the same table directly, as an independent witness of what the
backend did (:meth:`MemoryMachines.is_running`, :meth:`MemoryMachines.boots`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from fence_virt.errors import LocalError
from fence_virt.protocol import HostState

__all__ = ["RUNNING", "SHUTOFF", "MemoryMachines", "machine_uuid"]

#: virDomainState numbers a host list carries
RUNNING, SHUTOFF = 1, 5
_NAMESPACE = uuid.UUID("5d1c0a55-0000-4000-8000-00000000f00d")


def machine_uuid(name: str) -> str:
    """The UUID a simulated VM gets: derived from its name, so tests can predict it."""
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass
class _Machine:
    uuid: str
    running: bool
    #: power buttons do nothing (a hung hypervisor, a VM stuck in shutdown)
    stuck: bool
    #: how many times it was powered on since it was defined
    boots: int = 0


class MemoryMachines:
    """A thread-safe table of simulated VMs, by name; the UUID is :func:`machine_uuid`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._machines: dict[str, _Machine] = {}

    def define(self, name: str, *, running: bool = True, stuck: bool = False) -> None:
        """Add a VM unless one of this name exists (a restarted backend keeps the hardware)."""
        with self._lock:
            self._machines.setdefault(name, _Machine(machine_uuid(name), running, stuck))

    def find(self, domain: str) -> str | None:
        """The name of the VM whose name is ``domain``, or whose UUID it spells (any case)."""
        with self._lock:
            if domain in self._machines:
                return domain
            folded = domain.lower()
            for name, machine in self._machines.items():
                if machine.uuid == folded:
                    return name
        return None

    def press(self, name: str, *, on: bool) -> None:
        """Ask VM ``name`` to power on or off; a stuck VM ignores it."""
        with self._lock:
            machine = self._get(name)
            if machine.stuck or machine.running == on:
                return
            machine.running = on
            if on:
                machine.boots += 1

    def is_running(self, name: str) -> bool:
        """Whether VM ``name`` runs. :raises LocalError: no such VM."""
        with self._lock:
            return self._get(name).running

    def boots(self, name: str) -> int:
        """How many times VM ``name`` was powered on. :raises LocalError: no such VM."""
        with self._lock:
            return self._get(name).boots

    def rows(self) -> list[HostState]:
        """Every VM as a host-list row, by name."""
        with self._lock:
            return [
                HostState(name, machine.uuid, RUNNING if machine.running else SHUTOFF)
                for name, machine in sorted(self._machines.items())
            ]

    def _get(self, name: str) -> _Machine:
        machine = self._machines.get(name)
        if machine is None:
            raise LocalError(f"no simulated VM named {name!r}")
        return machine
