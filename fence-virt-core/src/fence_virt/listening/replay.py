"""Refuse a captured, signed fence_req played back: the replay guard.

The C daemon remembers a request for 10 s only (:mod:`.history`), so a captured signed
request can be played back later (c-suite-spec §3.3, §9.2 #7); for multicast the result goes
to whichever client waits on the port written in it, which may be a guest waiting for
another request. A genuine client signs every datagram with 6 fresh random bytes (§1.2
step 3: also every copy and every retransmit), so the same signature twice is a copy:
remembering signatures closes the hole without touching the wire format.

What is remembered: the fingerprint (the first :data:`FINGERPRINT_SIZE` bytes of the
signature) of **every** signed request a listener received and verified -- each copy a guest
sent from each of its addresses, whether or not its request was served -- for ``window``
seconds. There is no limit per request. What bounds the memory is ``capacity``:

* only requests that verify with the key take a place, so a stranger cannot fill it, and
  a replay of a remembered request takes none;
* at most ``capacity`` fingerprints (16384 by default: about 3 MiB of memory, 384 KiB on
  disk) -- genuine traffic above ``capacity / window`` requests a second (27 for the
  defaults: a few hundred guests' monitors) makes the oldest be forgotten before their
  window ends. That is logged, once per episode: raise nothing, fencing goes on.

Unsigned requests (hash none) cannot be told apart and are not tracked. The guard is pure
(no I/O, one event loop); :class:`~fence_virt.listening.ReplayStore` keeps its memory in a
state file across restarts.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fence_virt.protocol import FenceRequest, HashType

__all__ = [
    "FINGERPRINT_SIZE",
    "REPLAY_CAPACITY",
    "REPLAY_WINDOW",
    "ReplayGuard",
    "ReplaySettings",
]

#: seconds a received signature is remembered unless the listener's ``replay_window`` says
#: otherwise (C remembers nothing past 10 s)
REPLAY_WINDOW = 600.0
#: signatures remembered at most; the oldest go first
REPLAY_CAPACITY = 16384
#: bytes of a signature kept: 128 bits of a keyed digest, never equal by chance
FINGERPRINT_SIZE = 16


@dataclass(frozen=True)
class ReplaySettings:
    """How long a listener instance refuses copies, and where it keeps them across restarts."""

    #: seconds a received signature is refused again
    window: float = REPLAY_WINDOW
    #: the state file (:class:`~fence_virt.listening.ReplayStore`); ``None``: memory only
    state_file: Path | None = None


class ReplayGuard:
    """Fingerprints of the signed requests received, each remembered for ``window`` seconds.

    Not thread-safe: use it from one event loop.
    """

    def __init__(
        self,
        window: float = REPLAY_WINDOW,
        capacity: int = REPLAY_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], float] = time.time,
        log: logging.Logger | None = None,
    ) -> None:
        """``window``: seconds; ``capacity``: fingerprints kept at most; ``clock``: seconds,
        monotonic; ``wall_clock``: seconds since the epoch, for :meth:`entries` and
        :meth:`restore`; ``log``: where forgetting early is warned about."""
        self.window = window
        self._capacity = capacity
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = log or logging.getLogger("fence_virt.listening")
        # insertion order is time order (monotonic clock; restore inserts oldest first), so
        # expired fingerprints are always at the front: expiring costs O(expired)
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._full = False
        #: called after a fingerprint was added (a state file saves then)
        self.on_change: Callable[[], None] | None = None
        #: fingerprints forgotten before their window ended, for lack of room
        self.forgotten_early = 0

    def age(self, request: FenceRequest) -> float | None:
        """Seconds since this exact signature was received, or None if it was not."""
        now = self._clock()
        self._expire(now)
        when = self._seen.get(_fingerprint(request)) if _signed(request) else None
        return None if when is None else now - when

    def remember(self, request: FenceRequest) -> None:
        """Record a verified request's signature (no-op for an unsigned one)."""
        if not _signed(request):
            return
        now = self._clock()
        self._expire(now)
        fingerprint = _fingerprint(request)
        self._seen[fingerprint] = now
        self._seen.move_to_end(fingerprint)
        self._make_room()
        if self.on_change is not None:
            self.on_change()

    def entries(self) -> list[tuple[bytes, float]]:
        """``(fingerprint, received)`` for every live fingerprint, oldest first; ``received``
        in seconds since the epoch (for a state file: monotonic time ends with the process)."""
        now = self._clock()
        self._expire(now)
        offset = self._wall_clock() - now
        return [(fingerprint, when + offset) for fingerprint, when in self._seen.items()]

    def restore(self, entries: Iterable[tuple[bytes, float]]) -> int:
        """Take back what :meth:`entries` gave (from a state file), before any
        :meth:`remember`; entries older than the window are left out. One received "in the
        future" (the wall clock went back since) counts as received now.

        :returns: how many were taken.
        """
        now, wall = self._clock(), self._wall_clock()
        ages = sorted(
            (max(0.0, wall - received), fingerprint)
            for fingerprint, received in entries
            if len(fingerprint) == FINGERPRINT_SIZE
        )
        taken = 0
        for age, fingerprint in reversed(ages):  # oldest first, as remember would have
            if age < self.window and fingerprint not in self._seen:
                self._seen[fingerprint] = now - age
                taken += 1
        self._make_room()
        return taken

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if now - oldest < self.window:
                return
            self._seen.popitem(last=False)

    def _make_room(self) -> None:
        if len(self._seen) <= self._capacity:
            self._full = False
            return
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
            self.forgotten_early += 1
        if not self._full:
            self._full = True
            self._log.warning(
                "replay memory full (%d signatures within %.0f s): the oldest are forgotten "
                "early and could be replayed",
                self._capacity,
                self.window,
            )

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._seen)


def _signed(request: FenceRequest) -> bool:
    return request.hashtype != HashType.NONE


def _fingerprint(request: FenceRequest) -> bytes:
    return request.hash[:FINGERPRINT_SIZE]
