"""The replay guard: signatures of served requests, refused again for 10 minutes."""

from __future__ import annotations

from dataclasses import replace

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


# --- found by scripts/mutation (docs/mutation.md) ----------------------------------------------


def test_a_signature_is_forgotten_exactly_at_the_end_of_its_window() -> None:
    clock = Clock()
    guard = ReplayGuard(window=10, capacity=10, clock=clock)
    first = signed()
    guard.remember(first)
    clock.now += 5
    second = signed()
    guard.remember(second)
    clock.now += 4.5
    assert (guard.age(first), guard.age(second)) == (9.5, 4.5)
    clock.now += 0.5  # first: exactly 10 s
    assert guard.age(first) is None
    assert guard.age(second) == 5  # only the oldest went
    assert len(guard) == 1


def test_the_default_window_is_ten_minutes_and_capacity_16384() -> None:
    """docs/differences-from-c.md promises 10 minutes."""
    clock = Clock()
    guard = ReplayGuard(clock=clock)
    template = signed()
    requests = [replace(template, hash=n.to_bytes(64, "big")) for n in range(16385)]
    for request in requests:
        guard.remember(request)
    assert len(guard) == 16384
    assert guard.age(requests[0]) is None  # the oldest made room
    assert guard.age(requests[1]) == 0
    clock.now += 599.5
    assert guard.age(requests[-1]) == 599.5
    clock.now += 0.5
    assert guard.age(requests[-1]) is None
