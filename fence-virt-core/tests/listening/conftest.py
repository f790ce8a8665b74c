"""The kit's recording stand-in for core's Dispatcher, shared by the toolkit's tests.

The toolkit's side of the Dispatcher contract is what these tests check (what a listener
asks for, what it sends back); the real dispatcher and backends are exercised through
``fence_virtd`` in the daemon's and the multicast listener's tests.
"""

from __future__ import annotations

import pytest

from fence_virt.protocol import HostState
from fence_virt.testing import RECORDED_VMS, RecordingDispatcher


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    """Answers SUCCESS to every operation and :data:`RECORDED_VMS` to a list; records calls."""
    return RecordingDispatcher()


@pytest.fixture
def vms() -> tuple[HostState, ...]:
    """What the recording dispatcher lists."""
    return RECORDED_VMS
