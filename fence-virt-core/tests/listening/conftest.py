"""A recording stand-in for core's Dispatcher, shared by the toolkit's tests.

The toolkit's side of the Dispatcher contract is what these tests check (what a listener
asks for, what it sends back); the real dispatcher and backends are exercised through
``fence_virtd`` in the daemon's and the multicast listener's tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from fence_virt import Target
from fence_virt.errors import BackendError
from fence_virt.protocol import HostState, Operation, Response

VMS = (
    HostState("vm1", "11111111-1111-1111-1111-111111111111", 1),
    HostState("vm2", "22222222-2222-2222-2222-222222222222", 5),
)


class RecordingDispatcher:
    """Answers ``response`` to every operation and :data:`VMS` to a list; records each call.

    ``fail_list`` makes the list raise BackendError; ``before_fence`` runs before an
    operation is recorded (a test may assert there that it is not called too early).
    """

    def __init__(self) -> None:
        self.response = Response.SUCCESS
        self.fail_list = False
        self.before_fence: Callable[[], None] | None = None
        self.calls: list[tuple[Operation, Target] | tuple[str, str]] = []

    async def fence(self, operation: Operation, target: Target) -> Response:
        if self.before_fence is not None:
            self.before_fence()
        self.calls.append((operation, target))
        return self.response

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        self.calls.append(("hostlist", requester))
        if self.fail_list:
            raise BackendError("hypervisor unreachable")
        return VMS


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def vms() -> tuple[HostState, ...]:
    """What the recording dispatcher lists."""
    return VMS
