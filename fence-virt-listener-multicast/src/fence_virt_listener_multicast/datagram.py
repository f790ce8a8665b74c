"""What a datagram must pass before the host connects back; pure logic, no sockets.

Order: exact length, hash strength, signature (all in :func:`fence_virt.protocol.verify_request`),
then a connect-back address the host can use. Retransmits are the listener's business
(:class:`fence_virt.history.RequestHistory`); :class:`ReplayGuard` catches a *captured*
datagram played back after that 10-second window (c-suite-spec §3.3, §9.2 #7).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address

from fence_virt.errors import ProtocolError
from fence_virt.protocol import FenceRequest, HashType, verify_request

__all__ = ["REPLAY_CAPACITY", "REPLAY_WINDOW", "Accepted", "ReplayGuard", "check_datagram"]

#: seconds a served request's signature is remembered (C remembers nothing past 10 s)
REPLAY_WINDOW = 600.0
#: signatures remembered at most; the oldest go first
REPLAY_CAPACITY = 16384

HistoryKey = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Accepted:
    """An authenticated request and where to connect back to."""

    request: FenceRequest
    #: IP text from the packet (not the UDP source); also the requester for static maps
    host: str
    port: int

    @property
    def history_key(self) -> HistoryKey:
        """C's duplicate key: operation, seqno and the case-folded domain (history.c)."""
        return (self.request.request, self.request.seqno, self.request.domain.casefold())


def check_datagram(data: bytes, key: bytes, minimum: HashType) -> Accepted:
    """Verify one datagram; ProtocolError or AuthenticationError says why it is dropped."""
    request = verify_request(data, key, minimum)
    host, port = request.connect_back()
    address = ip_address(host)
    if address.is_unspecified or address.is_multicast:
        raise ProtocolError(f"connect-back address {host} is not a host address")
    if port == 0:
        raise ProtocolError("connect-back port is 0")
    return Accepted(request, host, port)


class ReplayGuard:
    """Signatures of requests already served, remembered for ``window`` seconds.

    A genuine client signs every datagram with fresh random bytes, so the same signature twice
    is a copy. Only served requests are remembered, so a retransmit after a failed connect-back
    is never mistaken for one. Unsigned requests (hash none) cannot be told apart: not tracked.
    """

    def __init__(
        self,
        window: float = REPLAY_WINDOW,
        capacity: int = REPLAY_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
