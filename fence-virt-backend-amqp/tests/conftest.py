"""Fixtures for the amqp backend's tests: a real RabbitMQ (Debian's) started by the tests.

``broker`` is one ``rabbitmq-server`` on 127.0.0.1 inside a namespace of its own, with its own
data directory, shared by the tests of one module (each test uses its own exchange or vhost)
and stopped by PID afterwards; ``mq_loop`` is an asyncio loop on a thread inside that
namespace, so in-process backends reach that broker and no other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from fence_virt_testinfra.rabbitmq import RABBITMQ_TOOLS, Broker, rabbitmq_broker
from fence_virt_testinfra.setns import NetnsLoop
from fence_virt_testinfra.tools import skip_unless_installed, skip_unless_netns

_exchanges = itertools.count(1)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """A running broker (guest/guest from loopback) in its own namespace."""
    skip_unless_netns()
    skip_unless_installed(*RABBITMQ_TOOLS)
    with rabbitmq_broker() as running:
        yield running


@pytest.fixture
def mq_loop(broker: Broker) -> Iterator[NetnsLoop]:
    """An asyncio loop on a thread inside the broker's namespace."""
    loop = NetnsLoop(broker.ns)
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def exchange() -> str:
    """An exchange name no other test of the session uses."""
    return f"fvt-{next(_exchanges)}"
