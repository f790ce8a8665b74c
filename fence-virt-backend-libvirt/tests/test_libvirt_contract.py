"""The backend contract suite (fence_virt.testing) on libvirt's in-process test driver.

``test:///default`` keeps one shared state while any connection to it is open: the harness
opens its own connection first, defines and starts a few more VMs there, and reads every
VM's state (and its domain ID, new at each start) through that connection -- never through
the backend under test. Closing it after the test resets the driver for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig, Observed
from fence_virt_backend_libvirt.plugin import LibvirtBackendPlugin

#: the test driver's own running VM, and the ones the harness adds
VMS = ("test", "contract-a", "contract-b", "contract-c", "contract-d")

CONFIG = """backends {
    libvirt {
        uri = "test:///default";
        reboot_timeout = "5";
    }
}
"""
BAD_CONFIG = CONFIG.replace('reboot_timeout = "5";', 'reboot_timeout = "soon";')


def domain_xml(name: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>1048576</memory><vcpu>1</vcpu>"
        "<os><type arch='i686'>hvm</type></os></domain>"
    )


class TestLibvirtBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self) -> Iterator[BackendHarness]:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        witness = libvirt.open("test:///default")
        try:
            for name in VMS[1:]:
                witness.defineXML(domain_xml(name)).create()

            def observe(vm: str) -> Observed:
                domain = witness.lookupByName(vm)
                return Observed(
                    running=domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING, boot=domain.ID()
                )

            yield BackendHarness(
                plugin=LibvirtBackendPlugin,
                name="libvirt",
                config=CONFIG,
                running=VMS,
                observe=observe,
                bad_config=BadConfig(BAD_CONFIG, line=4),
            )
        finally:
            witness.close()
