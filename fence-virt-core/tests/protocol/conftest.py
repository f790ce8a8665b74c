"""Fixtures for the codec tests: the C suite's packet captures, parsed with dpkt.

The captures live in ``tests/data/captures`` (see PROVENANCE.md there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
FENCE_PORT = 1229
FENCE_REQ_SIZE = 176


@dataclass
class TcpConnection:
    """Payload bytes of one TCP connection, per direction, in capture order."""

    initiator_port: int
    acceptor_port: int
    from_initiator: bytes = b""
    from_acceptor: bytes = b""
    #: payload sizes as (direction, length), direction "i" or "a"
    segments: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Capture:
    """UDP fence requests to port 1229 and TCP connections, in capture order."""

    udp_requests: list[bytes]
    connections: list[TcpConnection]


def _ip_packets(path: Path):
    with path.open("rb") as stream:
        reader = dpkt.pcapng.Reader(stream)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        for _ts, frame in reader:
            yield dpkt.ethernet.Ethernet(frame).data


def load_capture(path: Path) -> Capture:
    """Parse a loopback capture (Ethernet link type, IPv4) into fence-virt traffic."""
    udp: list[bytes] = []
    by_ends: dict[frozenset[int], TcpConnection] = {}
    order: list[TcpConnection] = []
    for ip in _ip_packets(path):
        seg = ip.data
        if isinstance(seg, dpkt.udp.UDP):
            if seg.dport == FENCE_PORT and len(seg.data) == FENCE_REQ_SIZE:
                udp.append(bytes(seg.data))
            continue
        ends = frozenset((seg.sport, seg.dport))
        if seg.flags & dpkt.tcp.TH_SYN and not seg.flags & dpkt.tcp.TH_ACK:
            by_ends[ends] = TcpConnection(seg.sport, seg.dport)
            order.append(by_ends[ends])
        conn = by_ends[ends]
        if not seg.data:
            continue
        if seg.sport == conn.initiator_port:
            conn.from_initiator += bytes(seg.data)
            conn.segments.append(("i", len(seg.data)))
        else:
            conn.from_acceptor += bytes(seg.data)
            conn.segments.append(("a", len(seg.data)))
    return Capture(udp, order)


@pytest.fixture(scope="session")
def vec_key() -> bytes:
    """The 27-byte key the vec capture was made with."""
    return (CAPTURES / "vec" / "short.key").read_bytes()


@pytest.fixture(scope="session")
def vec_capture() -> Capture:
    """fence_xvm -o off -H test, then -o list (multicast, key vec/short.key)."""
    return load_capture(CAPTURES / "vec" / "vec.pcapng")


@pytest.fixture(scope="session")
def status_capture() -> Capture:
    """fence_xvm -o status -H vm3-..., then -o list (multicast, key not available)."""
    return load_capture(CAPTURES / "cap-status.pcapng")


@pytest.fixture(scope="session")
def tcp_capture() -> Capture:
    """fence_virt -T 127.0.0.1 -o status -H test (tcp listener, key not available)."""
    return load_capture(CAPTURES / "cap-tcp.pcapng")
