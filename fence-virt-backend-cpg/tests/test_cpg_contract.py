"""The backend contract suite (fence_virt.testing) through the cpg backend on one real
corosync node: every operation travels as a CPG REQUEST to the group, is carried out by the
member holding the VM (this one) and answered by a REPLY.

The VMs live on libvirt's in-process ``test:///default``, whose state is shared while any
connection is open: the harness reads them through a connection of its own, never through
the backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig, Observed
from fence_virt_backend_cpg.plugin import CpgBackendPlugin

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


def domain_xml(name: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>1048576</memory><vcpu>1</vcpu>"
        "<os><type arch='i686'>hvm</type></os></domain>"
    )


class TestCpgBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self, cpg_loop) -> Iterator[BackendHarness]:
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
                plugin=CpgBackendPlugin,
                name="cpg",
                config=CONFIG,
                running=VMS,
                observe=observe,
                bad_config=BadConfig(BAD_CONFIG, line=5),
                run=cpg_loop.run,
                timeout=30,
            )
        finally:
            witness.close()
