"""The backend contract suite (fence_virt.testing) against the fake engine.

The harness reads each VM's state and boot counter from the fake engine's own table (a test
double: no oVirt engine can run here), never through the backend. Two stuck VMs (one up,
one down) accept stop and start but never change, for :class:`StuckVmContract`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig, Observed, StuckVmContract
from fence_virt_backend_ovirt.plugin import OvirtBackendPlugin
from fence_virt_testinfra.ovirt_engine import FakeEngine, FakeVm

USER = "fence@internal"
RUNNING = ("vm1", "vm2", "vm3", "c-a", "c-b")


class TestOvirtBackendContract(BackendContract, StuckVmContract):
    @pytest.fixture
    def backend_harness(self, engine: FakeEngine, config: Callable[..., str]) -> BackendHarness:
        for name in RUNNING[3:]:
            engine.add_vm(FakeVm(name, users={USER}))
        engine.add_vm(FakeVm("stuck-up", stuck=True, users={USER}))
        engine.add_vm(FakeVm("stuck-down", status="down", stuck=True, users={USER}))
        text = config(power_timeout=1)
        line = text.splitlines().index('\t\ttimeout = "2";') + 1

        def observe(vm: str) -> Observed:
            found = engine.vm(vm)
            return Observed(running=found.running, boot=found.boots)

        return BackendHarness(
            plugin=OvirtBackendPlugin,
            name="ovirt",
            config=text,
            running=RUNNING,
            observe=observe,
            bad_config=BadConfig(text.replace('timeout = "2";', 'timeout = "soon";'), line=line),
            stuck=("stuck-up", "stuck-down"),
        )
