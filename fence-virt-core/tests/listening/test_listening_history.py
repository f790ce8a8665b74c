"""The duplicate filter listeners use so a retransmitted request runs once."""

from __future__ import annotations

from fence_virt.listening import RequestHistory, request_key
from fence_virt.protocol import FenceRequest, HashType, Operation, SerialRequest


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


def test_both_request_types_share_c_s_key_with_the_domain_compared_without_case() -> None:
    """history.c / check_history: operation, seqno and strcasecmp of the domain."""
    fence = FenceRequest.build(Operation.REBOOT, "VM1", hashtype=HashType.SHA256, seqno=99)
    serial = SerialRequest(request=Operation.REBOOT, domain="vm1", seqno=99)
    assert request_key(fence) == request_key(serial) == (2, 99, "vm1")
    assert request_key(SerialRequest(request=Operation.OFF, domain="vm1", seqno=99)) != (
        request_key(serial)
    )
    assert request_key(SerialRequest(request=Operation.REBOOT, domain="vm1", seqno=98)) != (
        request_key(serial)
    )


def test_keys_expire_in_completion_order() -> None:
    now = [0.0]
    history = RequestHistory(window=10, clock=lambda: now[0])
    for key, at in (("a", 0.0), ("b", 5.0), ("a", 6.0)):
        now[0] = at
        history.release(key)
        history.complete(key)  # a completed again later moves behind b
    now[0] = 10.0
    assert not history.claim("a")
    assert not history.claim("b")
    now[0] = 15.0
    assert history.claim("b"), "b completed at 5 s has expired at 15 s"
    assert not history.claim("a"), "a completed again at 6 s is still remembered"
    now[0] = 16.0
    assert history.claim("a")


# --- found by scripts/mutation (docs/mutation.md) ----------------------------------------------


def test_the_default_window_is_c_s_ten_seconds_and_len_counts_both_kinds() -> None:
    clock = Clock()
    history = RequestHistory(clock=clock)
    done, running = (4, 1, "vm1"), (4, 2, "vm2")
    assert history.claim(done)
    history.complete(done)
    assert history.claim(running)
    assert len(history) == 2  # one answered, one in flight
    clock.now += 9.5
    assert not history.claim(done)
    clock.now += 0.5  # exactly 10 s after the answer
    assert history.claim(done)
