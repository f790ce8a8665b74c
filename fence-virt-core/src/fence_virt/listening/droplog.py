"""One warning per dropped input, rate-limited so a flood cannot flood the journal."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fence_virt.types import DropKind

__all__ = ["BURST", "RATE", "SUMMARY_DELAY", "DropLog", "Scheduler"]

#: sustained drop lines per second, and the burst allowed before limiting starts
RATE = 20.0
BURST = 100.0
#: seconds after the first unlogged drop at which a summary line is written
SUMMARY_DELAY = 10.0

#: ``schedule(delay_seconds, callback)``, e.g. :meth:`asyncio.loop.call_later`
Scheduler = Callable[[float, Callable[[], None]], object]


class DropLog:
    """Token bucket over ``logger.warning``; the next line logged says how many were skipped.

    Lines read ``dropped <what> from <sender>: <reason>``. Once the bucket is empty, drops are
    only counted; the next line logged, or a summary line 10 s after the first unlogged drop
    (when a scheduler is given), says how many were not logged.
    """

    def __init__(
        self,
        logger: logging.Logger,
        rate: float = RATE,
        burst: float = BURST,
        clock: Callable[[], float] = time.monotonic,
        schedule: Scheduler | None = None,
        *,
        what: str = "request",
        report: Callable[[str, DropKind, str], None] | None = None,
    ) -> None:
        """``rate``: lines per second; ``burst``: lines before limiting starts; ``clock``:
        seconds, monotonic; ``schedule(delay, callback)`` (e.g. ``loop.call_later``) enables
        summary lines; ``what``: the noun for one dropped input (``"datagram"``, ``"request"``),
        pluralised with ``s`` in summaries; ``report(sender, kind, reason)`` is told of every
        drop, logged or not (a listener passes its dispatcher's ``dropped``)."""
        self._logger = logger
        self._schedule = schedule
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._what = what
        self._tokens = burst
        self._last = clock()
        self.suppressed = 0
        self.report = report

    def drop(self, sender: str, reason: str, kind: DropKind = DropKind.MALFORMED) -> None:
        """Log (or count) one dropped input from ``sender`` (address, CID, guest UUID), and
        report it (``report``) as ``kind``."""
        if self.report is not None:
            self.report(sender, kind, reason)
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
        self._logger.warning("dropped %s from %s: %s%s", self._what, sender, reason, skipped)

    def flush(self) -> None:
        """Log how many drops went unlogged, if any."""
        if self.suppressed:
            self._logger.warning("%d more dropped %ss not logged", self.suppressed, self._what)
            self.suppressed = 0
