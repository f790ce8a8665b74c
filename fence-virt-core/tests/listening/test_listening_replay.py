"""The replay guard: every signed request received is refused again for its window."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from fence_virt.listening import FINGERPRINT_SIZE, ReplayGuard
from fence_virt.protocol import FenceRequest, HashType, Operation
from fence_virt.testing.factories import fence_request

KEY = bytes(range(256)) * 16
LOGGER = "fence_virt.listening.replay-test"


def signed(hashtype: HashType = HashType.SHA256, **changes: object) -> FenceRequest:
    values: dict[str, object] = {"seqno": 123456, **changes}
    return fence_request(Operation.REBOOT, "vm1", key=KEY, hashtype=hashtype, **values)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_replay_guard_remembers_signatures_for_its_window() -> None:
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


def test_every_copy_of_one_request_is_remembered_however_many() -> None:
    """A guest with 100 addresses sends 100 copies of one request (same operation, seqno
    and domain, each with its own address and signature): no copy is left out (the
    multicast listener used to keep 16)."""
    guard = ReplayGuard(window=600, clock=Clock())
    copies = [signed(address=f"198.51.100.{n}", port=1229) for n in range(1, 101)]
    for copy in copies:
        guard.remember(copy)
    assert all(guard.age(copy) == 0 for copy in copies)
    assert len(guard) == 100


def test_a_full_memory_forgets_the_oldest_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    guard = ReplayGuard(window=600, capacity=2, clock=clock, log=logging.getLogger(LOGGER))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(5):
            guard.remember(signed())
        assert guard.forgotten_early == 3
        clock.now += 601  # everything expires: the episode is over
        guard.remember(signed())
        for _ in range(2):
            guard.remember(signed())
    warnings = [r.getMessage() for r in caplog.records]
    assert (
        warnings
        == [
            "replay memory full (2 signatures within 600 s): the oldest are forgotten early "
            "and could be replayed"
        ]
        * 2
    )


def test_entries_and_restore_carry_the_memory_across_a_restart() -> None:
    """Monotonic clocks restart with the process; entries are in wall-clock seconds."""
    wall, before = Clock(1_700_000_000.0), Clock(50.0)
    old = ReplayGuard(window=600, clock=before, wall_clock=wall)
    early, late = signed(), signed()
    old.remember(early)
    before.now += 100
    old.remember(late)
    wall.now += 100
    entries = old.entries()
    assert [fingerprint for fingerprint, _ in entries] == [
        early.hash[:FINGERPRINT_SIZE],
        late.hash[:FINGERPRINT_SIZE],
    ]
    assert [received for _, received in entries] == [1_700_000_000.0, 1_700_000_100.0]

    wall.now += 450  # the restart took a while: early is 550 s old, late 450 s
    after = Clock(7.0)
    new = ReplayGuard(window=600, clock=after, wall_clock=wall)
    assert new.restore(entries) == 2
    assert new.age(early) == pytest.approx(550)
    assert new.age(late) == pytest.approx(450)
    after.now += 60
    assert new.age(early) is None
    assert new.age(late) == pytest.approx(510)


def test_restore_leaves_out_expired_entries_and_trusts_no_future() -> None:
    wall = Clock(1_700_000_000.0)
    guard = ReplayGuard(window=600, clock=Clock(), wall_clock=wall)
    expired, future = signed(), signed()
    entries = [
        (expired.hash[:FINGERPRINT_SIZE], wall.now - 601),
        (future.hash[:FINGERPRINT_SIZE], wall.now + 3600),  # the clock went back since
        (b"short", wall.now),
    ]
    assert guard.restore(entries) == 1
    assert guard.age(expired) is None
    assert guard.age(future) == 0, "counted as received now: the whole window ahead"
    assert len(guard) == 1


def test_on_change_is_called_for_every_new_signature() -> None:
    guard = ReplayGuard(clock=Clock())
    changes: list[int] = []
    guard.on_change = lambda: changes.append(len(guard))
    guard.remember(signed())
    guard.remember(signed(HashType.NONE))
    guard.remember(signed())
    assert changes == [1, 2]


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
    # distinct in the fingerprint the guard keeps (the first FINGERPRINT_SIZE bytes)
    requests = [replace(template, hash=n.to_bytes(64, "little")) for n in range(16385)]
    for request in requests:
        guard.remember(request)
    assert len(guard) == 16384
    assert guard.age(requests[0]) is None  # the oldest made room
    assert guard.age(requests[1]) == 0
    clock.now += 599.5
    assert guard.age(requests[-1]) == 599.5
    clock.now += 0.5
    assert guard.age(requests[-1]) is None
