"""Duplicate-request filter for listeners: a retransmitted request is carried out once.

The C clients resend the same request (same operation, seqno and domain) every couple of
seconds until a host answers; the C daemon remembers handled requests for 10 seconds
(c-suite-spec §5.8, history.c). Here a request is also remembered *while it runs*, so a
retransmit that arrives during a slow reboot is dropped instead of starting a second reboot.

Life of a key (:func:`request_key`): :meth:`RequestHistory.claim` (False means "drop this
copy") -> either :meth:`~RequestHistory.complete` (the reply was delivered: remember it for
``window`` seconds) or :meth:`~RequestHistory.release` (nothing was done, e.g. the connect-back
or the handshake failed: a retransmit may try again).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from fence_virt.protocol import FenceRequest, SerialRequest, UnservableRequest

__all__ = ["HISTORY_WINDOW", "HistoryKey", "RequestHistory", "request_key"]

#: seconds a completed request is remembered (C: 10 s, history.c)
HISTORY_WINDOW = 10.0

#: (operation code, seqno, case-folded domain)
HistoryKey = tuple[int, int, str]


def request_key(request: FenceRequest | SerialRequest | UnservableRequest) -> HistoryKey:
    """C's duplicate key for either request type: operation, seqno and the domain compared
    without case (``check_history`` in the C listeners uses ``strcasecmp``).

    For an :class:`~fence_virt.protocol.UnservableRequest` the domain is its raw bytes (one
    character each) after a NUL, which no decoded domain holds: its retransmits are one
    request, never the same as a request with a real domain.
    """
    if isinstance(request, UnservableRequest):
        raw = request.domain.decode("latin-1").casefold()
        return (request.request.request, request.request.seqno, "\0" + raw)
    return (request.request, request.seqno, request.domain.casefold())


class RequestHistory:
    """Thread-safe record of requests in flight and recently completed."""

    def __init__(
        self, window: float = HISTORY_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``window``: seconds a completed key is remembered; ``clock``: seconds, monotonic."""
        self._window = window
        self._clock = clock
        self._in_flight: set[Hashable] = set()
        # completion order is time order (the clock is monotonic and a completed key moves
        # to the end), so expired keys are always at the front: purging costs O(expired)
        self._done: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def _purge(self, now: float) -> None:
        while self._done:
            key, when = next(iter(self._done.items()))
            if now - when < self._window:
                return
            del self._done[key]

    def claim(self, key: Hashable) -> bool:
        """Return True if the caller should handle ``key``; False for a duplicate."""
        with self._lock:
            self._purge(self._clock())
            if key in self._in_flight or key in self._done:
                return False
            self._in_flight.add(key)
            return True

    def complete(self, key: Hashable) -> None:
        """Mark ``key`` as answered; duplicates are dropped for ``window`` seconds."""
        with self._lock:
            self._in_flight.discard(key)
            self._done[key] = self._clock()
            self._done.move_to_end(key)

    def release(self, key: Hashable) -> None:
        """Forget a claimed ``key`` that was not carried out, so a retransmit may retry."""
        with self._lock:
            self._in_flight.discard(key)

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._in_flight) + len(self._done)
