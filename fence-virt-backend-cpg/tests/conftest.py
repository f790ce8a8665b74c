"""Fixtures for the cpg backend's tests: a real corosync (Debian's) started by the tests.

``corosync`` is one node on 127.0.0.1 inside a namespace of its own; ``cpg_loop`` is an
asyncio loop on a thread inside that namespace, so code run there is a CPG client of that
corosync and of no other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fence_virt_testinfra.corosync import COROSYNC_TOOLS, CorosyncNode, corosync_node
from fence_virt_testinfra.setns import NetnsLoop
from fence_virt_testinfra.tools import skip_unless_installed, skip_unless_netns


@pytest.fixture
def corosync() -> Iterator[CorosyncNode]:
    """A quorate single-node corosync (node id 1) on loopback in its own namespace."""
    skip_unless_netns()
    skip_unless_installed(*COROSYNC_TOOLS)
    with corosync_node() as node:
        yield node


@pytest.fixture
def cpg_loop(corosync: CorosyncNode) -> Iterator[NetnsLoop]:
    """An asyncio loop on a thread inside the corosync node's namespace."""
    loop = NetnsLoop(corosync.ns)
    try:
        yield loop
    finally:
        loop.close()
