"""The rate-limited drop log."""

from __future__ import annotations

import logging

import pytest

from fence_virt.listening import DropLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_drop_log_limits_a_flood_and_counts_what_it_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("test.droplog")
    scheduled: list[tuple[float, object]] = []
    drops = DropLog(
        logger,
        rate=1.0,
        burst=3,
        clock=clock,
        schedule=lambda d, f: scheduled.append((d, f)),
        what="datagram",
    )
    with caplog.at_level(logging.WARNING, logger="test.droplog"):
        for n in range(10):
            drops.drop(f"198.51.100.9:{n}", "garbage")
        clock.now += 1.0
        drops.drop("198.51.100.9:99", "garbage")
        for _ in range(4):
            drops.drop("198.51.100.9:100", "garbage")
        assert [delay for delay, _ in scheduled] == [10.0, 10.0]
        drops.flush()
        drops.flush()
    lines = caplog.messages
    assert lines[:3] == [f"dropped datagram from 198.51.100.9:{n}: garbage" for n in range(3)]
    assert lines[3] == "dropped datagram from 198.51.100.9:99: garbage (7 more drops not logged)"
    assert lines[4:] == ["4 more dropped datagrams not logged"]


def test_lines_name_what_the_listener_drops(caplog: pytest.LogCaptureFixture) -> None:
    """A serial or tcp listener drops requests, not datagrams: the default noun."""
    drops = DropLog(logging.getLogger("test.droplog"), rate=1.0, burst=1, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="test.droplog"):
        drops.drop("6695eb01-f6a4-8304-79aa-97f2502e193f", "12 bytes: no serial magic")
        drops.drop("6695eb01-f6a4-8304-79aa-97f2502e193f", "12 bytes: no serial magic")
        drops.flush()
    assert caplog.messages == [
        "dropped request from 6695eb01-f6a4-8304-79aa-97f2502e193f: 12 bytes: no serial magic",
        "1 more dropped requests not logged",
    ]
