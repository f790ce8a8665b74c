"""The backend contract suite (fence_virt.testing) through the cpg backend on one real
corosync node: every operation travels as a CPG REQUEST to the group, is carried out by the
member holding the VM (this one) and answered by a REPLY.

The VMs live on libvirt's in-process ``test:///default``, whose state is shared while any
connection is open: the harness reads them through a connection of its own, never through
the backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig
from fence_virt_backend_cpg.plugin import CpgBackendPlugin
from fence_virt_testinfra.testdriver import witnessed_domains

pytestmark = pytest.mark.netns

VMS = ("test", "contract-a", "contract-b", "contract-c")

CONFIG = """backends {
    cpg {
        uri = "test:///default";
        reboot_timeout = "5";
        request_timeout = "20";
        group = "fvt-contract";
    }
}
"""
BAD_CONFIG = CONFIG.replace('request_timeout = "20";', 'request_timeout = "soon";')


class TestCpgBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self, cpg_loop) -> Iterator[BackendHarness]:
        with witnessed_domains(*VMS[1:]) as observe:
            yield BackendHarness(
                plugin=CpgBackendPlugin,
                name="cpg",
                config=CONFIG,
                running=VMS,
                observe=observe,
                bad_config=BadConfig(BAD_CONFIG, line=5),
                run=cpg_loop.run,
                timeout=30,
            )
