"""What a datagram must pass before the host connects back; pure logic, no sockets.

Order: exact length, hash strength, signature (all in
:func:`fence_virt.protocol.verify_request`), then a connect-back address the host can use.
An authentic request whose domain does not decode
(:class:`fence_virt.protocol.UnservableRequest`) passes: the host connects back and answers
it ``FAIL``, as C does, instead of leaving the client to its timeout. Retransmits are the
listener's business (:class:`fence_virt.listening.RequestHistory`);
:class:`fence_virt.listening.ReplayGuard` catches a *captured* datagram played back after
that 10-second window (c-suite-spec §3.3, §9.2 #7).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from fence_virt.errors import ProtocolError
from fence_virt.listening import HistoryKey, request_key
from fence_virt.listening.v2 import check_request
from fence_virt.protocol import FenceRequest, HashType, UnservableRequest, byte_swapped
from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, V2_HASHTYPE, ProtocolMode

__all__ = ["Accepted", "check_datagram"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """An authenticated request and where to connect back to."""

    #: the authentic fields (with an empty domain when :attr:`unservable`)
    request: FenceRequest
    #: IP text from the packet (not the UDP source); also the requester for static maps
    host: str
    port: int
    #: set when the domain does not decode: the request is answered FAIL, never carried out
    unservable: UnservableRequest | None = None
    #: sent by a big-endian client: port, seqno and family were read big-endian
    swapped: bool = False

    @property
    def received(self) -> FenceRequest | UnservableRequest:
        """What to answer: the request, or why it cannot be carried out."""
        return self.request if self.unservable is None else self.unservable

    @property
    def v2(self) -> bool:
        """A protocol v2 request: served with the v2 handshake and a sealed result."""
        return self.request.hashtype == V2_HASHTYPE

    @property
    def history_key(self) -> HistoryKey:
        """C's duplicate key: operation, seqno and the case-folded domain (history.c)."""
        return request_key(self.received)


def check_datagram(
    data: bytes,
    key: bytes,
    minimum: HashType,
    *,
    protocol: ProtocolMode = ProtocolMode.C,
    v2_window: float = DEFAULT_V2_WINDOW,
    serve_swapped: bool = True,
) -> Accepted:
    """Verify one datagram; ProtocolError or AuthenticationError says why it is dropped.

    ``protocol`` and ``v2_window``: the listener's keys (:func:`fence_virt.listening.v2.
    check_request`). A request from a big-endian client
    (:func:`fence_virt.protocol.byte_swapped`, checked once the signature verified) is read
    big-endian, or refused when ``serve_swapped`` is False (the listener's ``byte_swapped =
    "refuse"``).
    """
    unservable = None
    try:
        request = check_request(data, key, minimum, mode=protocol, window=v2_window)
    except UnservableRequest as problem:
        request, unservable = problem.request, problem
    swapped = byte_swapped(data)
    if swapped:
        if not serve_swapped:
            raise ProtocolError(
                "byte-swapped request from a big-endian client (its family reads "
                "correctly only big-endian): refused (byte_swapped = refuse)"
            )
        request, unservable = _swapped(data, unservable)
    host, port = request.connect_back()
    address = ip_address(host)
    if address.is_unspecified or address.is_multicast:
        raise ProtocolError(f"connect-back address {host} is not a host address")
    if port == 0:
        raise ProtocolError("connect-back port is 0")
    return Accepted(request, host, port, unservable, swapped)


def _swapped(
    data: bytes, unservable: UnservableRequest | None
) -> tuple[FenceRequest, UnservableRequest | None]:
    """The verified bytes read big-endian (the same domain problem, if any)."""
    if unservable is None:
        return FenceRequest.decode(data, swapped=True), None
    request, domain = FenceRequest.decode_without_domain(data, swapped=True)
    return request, UnservableRequest(str(unservable), request, domain)
