"""The rate-limited drop log, and the once-per-source log on top of it."""

from __future__ import annotations

import logging

import pytest

from fence_virt.listening import DropLog, SourceLog


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


REPLAYED = "replayed copy of a request received 3 s ago"
MORE = "; more from {} in the next 60 s are counted, not logged"


def test_a_source_log_logs_each_source_once_per_period_and_then_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    drops = DropLog(logging.getLogger("test.droplog"), clock=clock, what="datagram")
    scheduled: list[tuple[float, object]] = []
    sources = SourceLog(
        drops,
        what="replayed copies",
        clock=clock,
        schedule=lambda delay, callback: scheduled.append((delay, callback)),
    )
    with caplog.at_level(logging.WARNING, logger="test.droplog"):
        for n in range(500):  # one replayer, a new UDP port each time
            sources.refuse("198.51.100.9", f"198.51.100.9:{40000 + n}", REPLAYED)
        sources.refuse("198.51.100.10", "198.51.100.10:1", REPLAYED)
        assert [delay for delay, _ in scheduled] == [60.0, 60.0]
        clock.now += 60
        for _, end in scheduled:
            end()  # type: ignore[operator]
        sources.refuse("198.51.100.9", "198.51.100.9:2", REPLAYED)
        sources.flush()
    assert caplog.messages == [
        f"dropped datagram from 198.51.100.9:40000: {REPLAYED}" + MORE.format("198.51.100.9"),
        f"dropped datagram from 198.51.100.10:1: {REPLAYED}" + MORE.format("198.51.100.10"),
        "refused 499 more replayed copies from 198.51.100.9 in the last 60 s",
        f"dropped datagram from 198.51.100.9:2: {REPLAYED}" + MORE.format("198.51.100.9"),
    ]


def test_without_a_scheduler_a_period_ends_at_the_next_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    drops = DropLog(logging.getLogger("test.droplog"), clock=clock)
    sources = SourceLog(drops, what="replayed requests", period=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.droplog"):
        for _ in range(3):
            sources.refuse("3", "3", "replayed")
        clock.now += 10
        sources.refuse("4", "4", "replayed")
    assert caplog.messages[1] == "refused 2 more replayed requests from 3 in the last 10 s"
    assert caplog.messages[2].startswith("dropped request from 4: replayed;")


def test_forged_sources_beyond_the_bound_fall_back_to_the_rate_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A UDP source address can be forged: the sources followed are bounded, and the
    lines for the others stay within the drop log's own limit."""
    clock = Clock()
    drops = DropLog(logging.getLogger("test.droplog"), rate=1.0, burst=5, clock=clock)
    sources = SourceLog(drops, what="replayed copies", max_sources=3, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.droplog"):
        for n in range(1000):
            sources.refuse(f"10.0.{n // 256}.{n % 256}", f"10.0.{n // 256}.{n % 256}:1", "x")
    assert len(sources._episodes) == 3  # the bound itself is the point
    assert len(caplog.messages) == 5
