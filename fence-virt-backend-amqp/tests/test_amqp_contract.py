"""The backend contract suite (fence_virt.testing) through the amqp backend on a real
RabbitMQ: one host (host 1) announces its VMs through the broker and carries out requests.

The VMs live on libvirt's in-process ``test:///default``, whose state is shared while any
connection is open: the harness reads them through a connection of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig, Observed
from fence_virt_backend_amqp.plugin import AmqpBackendPlugin

pytestmark = pytest.mark.netns

VMS = ("test", "contract-a", "contract-b", "contract-c")

CONFIG = """backends {
    amqp {
        uri = "test:///default";
        host_id = "1";
        url = "amqp://guest:guest@127.0.0.1:5672/";
        exchange = "EXCHANGE";
        reboot_timeout = "5";
        request_timeout = "20";
    }
}
"""


def domain_xml(name: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>1048576</memory><vcpu>1</vcpu>"
        "<os><type arch='i686'>hvm</type></os></domain>"
    )


class TestAmqpBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self, mq_loop, exchange) -> Iterator[BackendHarness]:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        witness = libvirt.open("test:///default")
        config = CONFIG.replace("EXCHANGE", exchange)
        try:
            for name in VMS[1:]:
                witness.defineXML(domain_xml(name)).create()

            def observe(vm: str) -> Observed:
                domain = witness.lookupByName(vm)
                return Observed(
                    running=domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING, boot=domain.ID()
                )

            yield BackendHarness(
                plugin=AmqpBackendPlugin,
                name="amqp",
                config=config,
                running=VMS,
                observe=observe,
                bad_config=BadConfig(config.replace('"20"', '"soon"'), line=8),
                run=mq_loop.run,
                timeout=30,
            )
        finally:
            witness.close()
