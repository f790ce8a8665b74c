"""One warning per dropped input, rate-limited so a flood cannot flood the journal.

:class:`DropLog` limits all lines of a listener together (a token bucket).
:class:`SourceLog` on top of it logs a refusal a source can repeat at will -- a replayed
request, sent again and again -- once per source and period, then one line with the count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fence_virt.types import DropKind

__all__ = [
    "BURST",
    "MAX_SOURCES",
    "RATE",
    "SOURCE_PERIOD",
    "SUMMARY_DELAY",
    "DropLog",
    "Scheduler",
    "SourceLog",
]

#: sustained drop lines per second, and the burst allowed before limiting starts
RATE = 20.0
BURST = 100.0
#: seconds after the first unlogged drop at which a summary line is written
SUMMARY_DELAY = 10.0
#: seconds during which further refusals from a source are counted, not logged
SOURCE_PERIOD = 60.0
#: sources followed at once; refusals from more are logged through the bucket alone (the
#: UDP source of a datagram can be forged, so their number must not grow without bound)
MAX_SOURCES = 1024

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
        self.what = what
        self._tokens = burst
        self._last = clock()
        self.suppressed = 0
        self.report = report

    def drop(self, sender: str, reason: str, kind: DropKind = DropKind.MALFORMED) -> None:
        """Log (or count) one dropped input from ``sender`` (address, CID, guest UUID), and
        report it (``report``) as ``kind``."""
        self.note(sender, kind, reason)
        self.warn(f"dropped {self.what} from {sender}: {reason}")

    def note(self, sender: str, kind: DropKind, reason: str) -> None:
        """Report one dropped input to ``report`` without logging it (a refusal a
        :class:`SourceLog` only counts)."""
        if self.report is not None:
            self.report(sender, kind, reason)

    def warn(self, message: str) -> None:
        """Log (or count) one line about dropped input, within the same limit as
        :meth:`drop`'s (a :class:`SourceLog` summary, for instance)."""
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
        self._logger.warning("%s%s", message, skipped)

    def flush(self) -> None:
        """Log how many drops went unlogged, if any."""
        if self.suppressed:
            self._logger.warning("%d more dropped %ss not logged", self.suppressed, self.what)
            self.suppressed = 0


class _Episode:
    __slots__ = ("count", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.count = 0


class SourceLog:
    """Logs one kind of refusal once per source and period, through a :class:`DropLog`.

    The first refusal from a source is a :meth:`DropLog.drop` line (so all lines stay within
    the listener's limit); further ones from that source are only counted for ``period``
    seconds, after which one line says how many there were (at the end of the period when a
    scheduler is given, else with the source's next refusal). Sources beyond
    ``max_sources`` at once are logged through the drop log alone.
    """

    def __init__(
        self,
        drops: DropLog,
        *,
        what: str,
        period: float = SOURCE_PERIOD,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
        schedule: Scheduler | None = None,
    ) -> None:
        """``what``: the refused inputs in the plural, for summaries (``"replayed
        copies"``); ``period``: seconds; ``clock``: seconds, monotonic; ``schedule(delay,
        callback)`` (e.g. ``loop.call_later``) writes summaries on time."""
        self._drops = drops
        self._what = what
        self._period = period
        self._max_sources = max_sources
        self._clock = clock
        self._schedule = schedule
        # insertion order is start order: expired episodes are always at the front
        self._episodes: dict[str, _Episode] = {}

    def refuse(
        self, source: str, sender: str, reason: str, kind: DropKind = DropKind.REPLAY
    ) -> None:
        """One refusal: ``source`` is what counts as one source (an IP address, a CID);
        ``sender``, ``reason`` and ``kind`` are as for :meth:`DropLog.drop` (every refusal is
        reported, logged or only counted)."""
        now = self._clock()
        self._end_expired(now)
        episode = self._episodes.get(source)
        if episode is not None:
            episode.count += 1
            self._drops.note(sender, kind, reason)
            return
        if len(self._episodes) >= self._max_sources:
            self._drops.drop(sender, reason, kind)
            return
        episode = self._episodes[source] = _Episode(now)
        if self._schedule is not None:
            self._schedule(self._period, lambda: self._end(source, episode))
        more = f"; more from {source} in the next {self._period:.0f} s are counted, not logged"
        self._drops.note(sender, kind, reason)
        self._drops.warn(f"dropped {self._drops.what} from {sender}: {reason}{more}")

    def flush(self) -> None:
        """End every source's period now, with its count line (a listener's stop)."""
        for source, episode in list(self._episodes.items()):
            self._end(source, episode)

    def _end_expired(self, now: float) -> None:
        while self._episodes:
            source, episode = next(iter(self._episodes.items()))
            if now - episode.started < self._period:
                return
            self._end(source, episode)

    def _end(self, source: str, episode: _Episode) -> None:
        if self._episodes.get(source) is not episode:
            return  # already ended
        del self._episodes[source]
        if episode.count:
            self._drops.warn(
                f"refused {episode.count} more {self._what} from {source} "
                f"in the last {self._period:.0f} s"
            )
