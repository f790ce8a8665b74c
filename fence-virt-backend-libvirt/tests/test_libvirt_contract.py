"""The backend contract suite (fence_virt.testing) on libvirt's in-process test driver.

``test:///default`` keeps one shared state while any connection to it is open: the harness
opens its own connection first, defines and starts a few more VMs there, and reads every
VM's state (and its domain ID, new at each start) through that connection -- never through
the backend under test. Closing it after the test resets the driver for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig
from fence_virt_backend_libvirt.plugin import LibvirtBackendPlugin
from fence_virt_testinfra.testdriver import witnessed_domains

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


class TestLibvirtBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self) -> Iterator[BackendHarness]:
        with witnessed_domains(*VMS[1:]) as observe:
            yield BackendHarness(
                plugin=LibvirtBackendPlugin,
                name="libvirt",
                config=CONFIG,
                running=VMS,
                observe=observe,
                bad_config=BadConfig(BAD_CONFIG, line=4),
            )
