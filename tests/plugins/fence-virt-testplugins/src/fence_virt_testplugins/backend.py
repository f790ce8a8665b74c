"""A backend whose VMs live in a dict.

Config::

    backends {
        memory {
            vm = "vm1";           # repeatable; each VM starts running
            vm = "vm2";
            unusable = "why";     # optional: make the availability check say no
        }
    }
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from fence_virt import Availability, ConfigSection, Target, hookimpl
from fence_virt.protocol import HostState, Response

RUNNING, SHUTOFF = 1, 5  # virDomainState numbers
_NAMESPACE = uuid.UUID("5d1c0a55-0000-4000-8000-00000000f00d")


@dataclass(frozen=True)
class MemoryBackendConfig:
    vm: tuple[str, ...] = ("vm1", "vm2")
    unusable: str | None = None


class MemoryBackend:
    """:class:`fence_virt.Backend` over a dict of VM name -> (UUID, state)."""

    def __init__(self, settings: MemoryBackendConfig) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._vms: dict[str, tuple[str, int]] = {}

    def describe(self) -> str:
        return f"memory ({len(self._settings.vm)} VMs)"

    def start(self) -> None:
        with self._lock:
            self._vms = {
                name: (str(uuid.uuid5(_NAMESPACE, name)), RUNNING) for name in self._settings.vm
            }

    def stop(self) -> None:
        return None

    def _find(self, domain: str) -> str | None:
        for name, (vm_uuid, _state) in self._vms.items():
            if domain in (name, vm_uuid):
                return name
        return None

    def _set(self, target: Target, state: int) -> Response:
        with self._lock:
            name = self._find(target.domain)
            if name is None:
                return Response.FAIL
            self._vms[name] = (self._vms[name][0], state)
            return Response.SUCCESS

    def off(self, target: Target) -> Response:
        return self._set(target, SHUTOFF)

    def on(self, target: Target) -> Response:
        return self._set(target, RUNNING)

    def reboot(self, target: Target) -> Response:
        with self._lock:
            return Response.FAIL if self._find(target.domain) is None else Response.SUCCESS

    def status(self, target: Target) -> Response:
        with self._lock:
            name = self._find(target.domain)
            if name is None:
                return Response.FAIL
            return Response.SUCCESS if self._vms[name][1] == RUNNING else Response.OFF

    def devstatus(self) -> Response:
        return Response.SUCCESS

    def hostlist(self, requester: str) -> Sequence[HostState]:
        del requester
        with self._lock:
            return [HostState(domain=n, uuid=u, state=s) for n, (u, s) in sorted(self._vms.items())]


class MemoryBackendPlugin:
    """In-memory test backend (VMs in a dict; not for production)."""

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> Availability:
        settings = section.load(MemoryBackendConfig)
        if settings.unusable:
            return Availability.no(settings.unusable)
        return Availability.yes(f"{len(settings.vm)} in-memory VMs")

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> MemoryBackend:
        return MemoryBackend(section.load(MemoryBackendConfig))
