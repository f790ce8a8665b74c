"""A backend whose VMs live in memory (:class:`~fence_virt.testing.memory.MemoryMachines`).

Config::

    backends {
        memory {
            vm = "vm1";           # repeatable; each VM starts running (default: vm1, vm2)
            shutoff = "vm3";      # repeatable; VMs that start powered off
            stuck = "vm2";        # repeatable; one of the above whose power never changes
            unusable = "why";     # optional: make the availability check say no
        }
    }

Every power operation presses the simulated button and reads the state back: the answer is
``SUCCESS`` only when the VM really reached the state, so a ``stuck`` VM gets ``FAIL`` -- the
honest behaviour :class:`fence_virt.testing.StuckVmContract` checks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fence_virt.config import ConfigSection
from fence_virt.errors import ConfigError
from fence_virt.hookspecs import hookimpl
from fence_virt.protocol import HostState, Response
from fence_virt.testing.memory.machines import MemoryMachines
from fence_virt.types import Availability, Target

__all__ = ["MemoryBackend", "MemoryBackendConfig", "MemoryBackendPlugin"]

log = logging.getLogger("fence_virt.testing.memory")


@dataclass(frozen=True)
class MemoryBackendConfig:
    """The ``backends { memory { ... } }`` block."""

    vm: tuple[str, ...] = ("vm1", "vm2")
    shutoff: tuple[str, ...] = ()
    stuck: tuple[str, ...] = ()
    unusable: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.vm, *self.shutoff)


def load_memory_config(section: ConfigSection) -> MemoryBackendConfig:
    """Read and check the block. :raises ConfigError: at the offending entry's file:line."""
    settings = section.load(MemoryBackendConfig)
    for name in settings.shutoff:
        if name in settings.vm:
            raise _entry_error(section, "shutoff", name, f"{name} cannot be both vm and shutoff")
    for name in settings.stuck:
        if name not in settings.names:
            raise _entry_error(section, "stuck", name, f"stuck VM {name} is not defined")
    return settings


def _entry_error(section: ConfigSection, key: str, value: str, message: str) -> ConfigError:
    """A ConfigError at the line of the entry ``key = "value";`` (not the key's last one)."""
    entries = section.node.values_named(key) if section.node is not None else ()
    line = next((entry.line for entry in entries if entry.value == value), 0)
    if not line:
        return section.error(key, message)
    return ConfigError(f"{section.path}: {message}", path=section.source, line=line)


class MemoryBackend:
    """:class:`fence_virt.Backend` over :class:`MemoryMachines` (plain ``def``: worker threads)."""

    def __init__(self, settings: MemoryBackendConfig, machines: MemoryMachines) -> None:
        self._settings = settings
        self.machines = machines

    def describe(self) -> str:
        return f"memory ({len(self._settings.names)} VMs)"

    def start(self) -> None:
        stuck = set(self._settings.stuck)
        for name in self._settings.vm:
            self.machines.define(name, running=True, stuck=name in stuck)
        for name in self._settings.shutoff:
            self.machines.define(name, running=False, stuck=name in stuck)

    def stop(self) -> None:
        return None

    def _find(self, target: Target, operation: str) -> str | None:
        name = self.machines.find(target.domain)
        if name is None:
            log.warning("%s %s: no such VM", operation, target.domain)
        return name

    def _power(self, name: str, *, on: bool) -> bool:
        """Press the button, then read back: True once the VM is in the asked state."""
        self.machines.press(name, on=on)
        reached = self.machines.is_running(name) == on
        if not reached:
            log.error("VM %s did not power %s", name, "on" if on else "off")
        return reached

    def off(self, target: Target) -> Response:
        name = self._find(target, "off")
        if name is None:
            return Response.FAIL
        return Response.SUCCESS if self._power(name, on=False) else Response.FAIL

    def on(self, target: Target) -> Response:
        name = self._find(target, "on")
        if name is None:
            return Response.FAIL
        return Response.SUCCESS if self._power(name, on=True) else Response.FAIL

    def reboot(self, target: Target) -> Response:
        name = self._find(target, "reboot")
        if name is None:
            return Response.FAIL
        if not self.machines.is_running(name):
            return Response.SUCCESS  # as C: reboot does not power on a VM that is off
        if not self._power(name, on=False) or not self._power(name, on=True):
            return Response.FAIL
        return Response.SUCCESS

    def status(self, target: Target) -> Response:
        name = self._find(target, "status")
        if name is None:
            return Response.FAIL
        return Response.SUCCESS if self.machines.is_running(name) else Response.OFF

    def devstatus(self) -> Response:
        return Response.SUCCESS

    def hostlist(self, requester: str) -> Sequence[HostState]:
        del requester
        return self.machines.rows()


class MemoryBackendPlugin:
    """In-memory test backend (VMs in a dict; not for production).

    :param machines: the simulated hardware its backends act on; tests pass their own to
        watch it (the entry point builds the plugin without arguments: a fresh table).
    """

    def __init__(self, machines: MemoryMachines | None = None) -> None:
        self.machines = MemoryMachines() if machines is None else machines

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> Availability:
        settings = load_memory_config(section)
        if settings.unusable:
            return Availability.no(settings.unusable)
        return Availability.yes(f"{len(settings.names)} in-memory VMs")

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> MemoryBackend:
        return MemoryBackend(load_memory_config(section), self.machines)
