"""The replay guard: signatures of served requests, refused again for 10 minutes."""

from __future__ import annotations

from fence_virt.listening import ReplayGuard
from fence_virt.protocol import FenceRequest, HashType, Operation
from fence_virt.testing.factories import fence_request

KEY = bytes(range(256)) * 16


def signed(hashtype: HashType = HashType.SHA256) -> FenceRequest:
    return fence_request(Operation.REBOOT, "vm1", key=KEY, hashtype=hashtype, seqno=123456)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_replay_guard_remembers_served_signatures_for_its_window() -> None:
    clock = Clock()
    guard = ReplayGuard(window=600, capacity=10, clock=clock)
    first, other = signed(), signed()
    assert first.hash != other.hash, "every signing draws fresh random bytes"
    assert guard.age(first) is None
    guard.remember(first)
    clock.now += 30
    assert guard.age(first) == 30
    assert guard.age(other) is None
    clock.now += 600
    assert guard.age(first) is None
    assert len(guard) == 0


def test_replay_guard_is_bounded_and_ignores_unsigned_requests() -> None:
    guard = ReplayGuard(window=600, capacity=3, clock=Clock())
    requests = [signed() for _ in range(5)]
    for request in requests:
        guard.remember(request)
    assert len(guard) == 3
    assert guard.age(requests[0]) is None
    assert guard.age(requests[4]) == 0
    unsigned = signed(HashType.NONE)
    guard.remember(unsigned)
    assert guard.age(unsigned) is None
