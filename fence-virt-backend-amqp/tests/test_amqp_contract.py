"""The backend contract suite (fence_virt.testing) through the amqp backend on a real
RabbitMQ: one host (host 1) announces its VMs through the broker and carries out requests.

The VMs live on libvirt's in-process ``test:///default``, whose state is shared while any
connection is open: the harness reads them through a connection of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fence_virt.testing import BackendContract, BackendHarness, BadConfig
from fence_virt_backend_amqp.plugin import AmqpBackendPlugin
from fence_virt_testinfra.testdriver import witnessed_domains

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


class TestAmqpBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self, mq_loop, exchange) -> Iterator[BackendHarness]:
        config = CONFIG.replace("EXCHANGE", exchange)
        with witnessed_domains(*VMS[1:]) as observe:
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
