"""One warning per dropped datagram, rate-limited so a flood cannot flood the journal."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["DropLog"]

#: sustained drop lines per second, and the burst allowed before limiting starts
RATE = 20.0
BURST = 100.0
#: seconds after the first unlogged drop at which a summary line is written
SUMMARY_DELAY = 10.0

Scheduler = Callable[[float, Callable[[], None]], object]


class DropLog:
    """Token bucket over ``logger.warning``; the next line logged says how many were skipped."""

    def __init__(
        self,
        logger: logging.Logger,
        rate: float = RATE,
        burst: float = BURST,
        clock: Callable[[], float] = time.monotonic,
        schedule: Scheduler | None = None,
    ) -> None:
        """``schedule(delay, callback)`` (e.g. ``loop.call_later``) enables summary lines."""
        self._logger = logger
        self._schedule = schedule
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()
        self.suppressed = 0

    def drop(self, sender: str, reason: str) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            if not self.suppressed and self._schedule is not None:
                self._schedule(SUMMARY_DELAY, self.flush)
            self.suppressed += 1
            return
        self._tokens -= 1
        skipped = f" ({self.suppressed} more drops not logged)" if self.suppressed else ""
        self.suppressed = 0
        self._logger.warning("dropped datagram from %s: %s%s", sender, reason, skipped)

    def flush(self) -> None:
        """Log how many drops went unlogged, if any."""
        if self.suppressed:
            self._logger.warning("%d more dropped datagrams not logged", self.suppressed)
            self.suppressed = 0
