"""The ``example`` backend plugin: fences VMs recorded in a JSON state file.

Configuration (``fence_virt.conf``)::

    fence_virtd { backend = "example"; }
    backends {
        example {
            state_file = "/var/lib/fence-virt-example/vms.json";   # required
            reboot_pause = "0.5";   # seconds between off and on in a reboot (default 0)
        }
    }

Every operation reads the VM back from the file after changing it and answers ``SUCCESS`` only
when the file shows the asked state; an unknown VM gets ``FAIL`` (never ``OFF``), as the plugin
contract requires.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fence_virt import Availability, ConfigSection, Target, hookimpl
from fence_virt.config import NON_NEGATIVE
from fence_virt.protocol import HostState, Response
from fence_virt_backend_example.state import RUNNING, SHUTOFF, StateFile, VmState

__all__ = ["ExampleBackend", "ExampleBackendPlugin", "ExampleSettings"]

log = logging.getLogger("fence_virt_backend_example")


@dataclass(frozen=True)
class ExampleSettings:
    """The ``backends { example { ... } }`` block."""

    #: the JSON state file (see :mod:`fence_virt_backend_example.state`)
    state_file: Path
    #: seconds between powering off and on again in a reboot
    reboot_pause: Annotated[float, NON_NEGATIVE] = 0.0


class ExampleBackend:
    """:class:`fence_virt.Backend` over a :class:`StateFile`.

    Methods are plain ``def``: core runs them in worker threads, concurrently for different
    VMs (the state file serializes its own writes).
    """

    def __init__(self, settings: ExampleSettings) -> None:
        self._settings = settings
        self._state = StateFile(settings.state_file)

    def describe(self) -> str:
        return f"example state file {self._settings.state_file}"

    def start(self) -> None:
        """Refuse to start on an unusable file. :raises BackendError: why it is unusable."""
        self._state.vms()

    def stop(self) -> None:
        return None

    def off(self, target: Target) -> Response:
        return self._power(target, on=False, operation="off")

    def on(self, target: Target) -> Response:
        return self._power(target, on=True, operation="on")

    def reboot(self, target: Target) -> Response:
        vm = self._find(target, "reboot")
        if vm is None:
            return Response.FAIL
        if not vm.running:
            return Response.SUCCESS  # as the C libvirt backend: reboot leaves an off VM off
        if self._power(target, on=False, operation="reboot") is not Response.SUCCESS:
            return Response.FAIL
        time.sleep(self._settings.reboot_pause)
        return self._power(target, on=True, operation="reboot")

    def status(self, target: Target) -> Response:
        vm = self._find(target, "status")
        if vm is None:
            return Response.FAIL
        return Response.SUCCESS if vm.running else Response.OFF

    def devstatus(self) -> Response:
        problem = self._state.problem()
        if problem is not None:
            log.error("devstatus: %s", problem)
            return Response.FAIL
        return Response.SUCCESS

    def hostlist(self, requester: str) -> list[HostState]:
        del requester  # every VM in the file is offered to every requester
        return [
            HostState(vm.name, vm.uuid, RUNNING if vm.running else SHUTOFF)
            for vm in self._state.vms()
        ]

    def _find(self, target: Target, operation: str) -> VmState | None:
        vm = self._state.find(target.domain)
        if vm is None:
            log.warning("%s %s: no such VM in %s", operation, target.domain, self._state.path)
        return vm

    def _power(self, target: Target, *, on: bool, operation: str) -> Response:
        vm = self._find(target, operation)
        if vm is None:
            return Response.FAIL
        after = self._state.set_power(vm.name, on=on)
        if after.running != on:
            log.error("%s %s: the state file still says %s", operation, vm.name, after.running)
            return Response.FAIL
        return Response.SUCCESS


class ExampleBackendPlugin:
    """Example backend: VMs in a JSON state file (a worked example; fences nothing real)."""

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> Availability:
        if not section.present:
            return Availability.no("no backends { example { ... } } block")
        settings = section.load(ExampleSettings)
        problem = StateFile(settings.state_file).problem()
        if problem is not None:
            return Availability.no(problem)
        return Availability.yes(f"state file {settings.state_file}")

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> ExampleBackend:
        return ExampleBackend(section.load(ExampleSettings))
