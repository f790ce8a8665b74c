"""Refuse a captured, signed fence_req played back after the history window.

The C daemon remembers a request for 10 s only (:mod:`.history`), so a captured signed
request can be replayed later (c-suite-spec §3.3, §9.2 #7). A genuine client signs every
request with fresh random bytes, so the same signature twice is a copy: remembering the
signatures of served requests for longer closes the hole without touching the wire format.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from fence_virt.protocol import FenceRequest, HashType

__all__ = ["REPLAY_CAPACITY", "REPLAY_WINDOW", "ReplayGuard"]

#: seconds a served request's signature is remembered (C remembers nothing past 10 s)
REPLAY_WINDOW = 600.0
#: signatures remembered at most; the oldest go first
REPLAY_CAPACITY = 16384


class ReplayGuard:
    """Signatures of requests already served, remembered for ``window`` seconds.

    Remember only served requests, so a retransmit after a failed connect-back is never
    mistaken for a copy. Unsigned requests (hash none) cannot be told apart: not tracked.
    """

    def __init__(
        self,
        window: float = REPLAY_WINDOW,
        capacity: int = REPLAY_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``window``: seconds; ``capacity``: signatures kept at most; ``clock``: seconds,
        monotonic."""
        self._window = window
        self._capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def age(self, request: FenceRequest) -> float | None:
        """Seconds since this exact signature was served, or None if it was not."""
        self._expire(self._clock())
        when = self._seen.get(request.hash) if _signed(request) else None
        return None if when is None else self._clock() - when

    def remember(self, request: FenceRequest) -> None:
        """Record the signature of a served request (no-op for an unsigned one)."""
        if not _signed(request):
            return
        self._seen[request.hash] = self._clock()
        self._seen.move_to_end(request.hash)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if now - oldest < self._window:
                return
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


def _signed(request: FenceRequest) -> bool:
    return request.hashtype != HashType.NONE
