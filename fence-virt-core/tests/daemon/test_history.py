"""The duplicate filter listeners use so a retransmitted request runs once."""

from __future__ import annotations

from fence_virt.history import RequestHistory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_duplicate_dropped_while_in_flight_and_within_window() -> None:
    clock = Clock()
    history = RequestHistory(window=10.0, clock=clock)
    key = (2, 123456, "vm1")
    assert history.claim(key)
    assert not history.claim(key)  # retransmit while the reboot still runs
    history.complete(key)
    clock.now += 9.9
    assert not history.claim(key)
    clock.now += 0.2
    assert history.claim(key)  # window over: a new request with the same identity runs
    assert len(history) == 1


def test_released_request_may_be_retried() -> None:
    history = RequestHistory()
    key = (1, 7, "vm2")
    assert history.claim(key)
    history.release(key)  # e.g. the connect-back failed: nothing was done
    assert history.claim(key)


def test_distinct_requests_do_not_interfere() -> None:
    history = RequestHistory()
    assert history.claim((1, 7, "vm1"))
    assert history.claim((1, 7, "vm2"))
    assert history.claim((2, 7, "vm1"))
    assert history.claim((1, 8, "vm1"))
