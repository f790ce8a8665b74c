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

from fence_virt import Availability, Target, hookimpl
from fence_virt.config import ConfigNode, ConfigTree, load_section
from fence_virt.protocol import HostState, Response

RUNNING, SHUTOFF = 1, 5  # virDomainState numbers
_NAMESPACE = uuid.UUID("5d1c0a55-0000-4000-8000-00000000f00d")


@dataclass(frozen=True)
class MemoryBackendConfig:
    vm: tuple[str, ...] = ("vm1", "vm2")
    unusable: str | None = None


class MemoryBackendPlugin:
    """In-memory test backend (VMs in a dict; not for production)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vms: dict[str, tuple[str, int]] = {}

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigNode | None) -> Availability:
        settings = load_section(section, MemoryBackendConfig, where="backends/memory")
        if settings.unusable:
            return Availability.no(settings.unusable)
        return Availability.yes(f"{len(settings.vm)} in-memory VMs")

    @hookimpl
    def fence_virt_backend_start(self, section: ConfigNode | None, config: ConfigTree) -> bool:
        del config
        settings = load_section(section, MemoryBackendConfig, where="backends/memory")
        with self._lock:
            self._vms = {name: (str(uuid.uuid5(_NAMESPACE, name)), RUNNING) for name in settings.vm}
        return True

    @hookimpl
    def fence_virt_backend_stop(self) -> bool:
        return True

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

    @hookimpl
    def fence_virt_backend_null(self) -> Response:
        return Response.FAIL

    @hookimpl
    def fence_virt_backend_off(self, target: Target) -> Response:
        return self._set(target, SHUTOFF)

    @hookimpl
    def fence_virt_backend_on(self, target: Target) -> Response:
        return self._set(target, RUNNING)

    @hookimpl
    def fence_virt_backend_reboot(self, target: Target) -> Response:
        with self._lock:
            name = self._find(target.domain)
            if name is None:
                return Response.FAIL
        return Response.SUCCESS

    @hookimpl
    def fence_virt_backend_status(self, target: Target) -> Response:
        with self._lock:
            name = self._find(target.domain)
            if name is None:
                return Response.FAIL
            return Response.SUCCESS if self._vms[name][1] == RUNNING else Response.OFF

    @hookimpl
    def fence_virt_backend_devstatus(self) -> Response:
        return Response.SUCCESS

    @hookimpl
    def fence_virt_backend_hostlist(self) -> Sequence[HostState]:
        with self._lock:
            return [HostState(domain=n, uuid=u, state=s) for n, (u, s) in sorted(self._vms.items())]
