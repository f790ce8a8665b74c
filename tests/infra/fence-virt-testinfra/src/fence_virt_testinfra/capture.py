"""Capture the fence_req datagrams a client really sent, to replay them later.

:class:`Sniffer` reads an ``AF_PACKET`` socket bound to one interface of a namespace the test
made (``lo``, or a bridge the clients send on) and keeps the UDP payloads sent to the
multicast port that have a fence_req's size: every copy a client sent from each of its
addresses and every retransmit, byte for byte, as a host received them.
:func:`multicast_sender` makes the socket that plays them back, in the same namespace.
"""

from __future__ import annotations

import socket
import time

from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.setns import in_netns

__all__ = ["ETH_P_ALL", "ETH_P_IP", "FENCE_REQ_SIZE", "Sniffer", "multicast_sender"]

#: <linux/if_ether.h>: IPv4, and every protocol (only a socket bound to every protocol is
#: shown the packets the namespace sends, not only those it receives)
ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
#: <asm-generic/socket.h>: a receive buffer above rmem_max (root); Python does not name it
SO_RCVBUFFORCE = 33
#: bytes the capture may hold between two reads: every packet on the interface counts (the
#: connect-back's TCP segments too), each with the size of its buffer, which on ``lo`` is
#: large; the default (about 200 KiB) lost fence_xvm's retransmits
CAPTURE_BUFFER = 16 * 1024 * 1024
#: bytes of a fence_req datagram (c-suite-spec §1.1)
FENCE_REQ_SIZE = 176


class Sniffer:
    """fence_req datagrams (UDP to ``port``, 176 bytes) seen on ``interface`` of ``ns``,
    sent or received there."""

    def __init__(self, ns: NetNS, interface: str = "lo", port: int = 1229) -> None:
        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CAPTURE_BUFFER)
            sock.bind((interface, ETH_P_ALL))
            sock.setblocking(False)
            return sock

        self._sock: socket.socket = in_netns(ns, open_socket)
        self._port = port
        self.seen: list[bytes] = []

    def collect(self) -> list[bytes]:
        """Datagrams captured since the last call, each once, in arrival order."""
        new = []
        while True:
            try:
                packet, (_, protocol, *_) = self._sock.recvfrom(65536)
            except BlockingIOError:
                break
            payload = self._payload(packet) if protocol == ETH_P_IP else None
            if payload is not None and payload not in self.seen:
                self.seen.append(payload)
                new.append(payload)
        return new

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Collect until at least ``count`` datagrams were seen in all; :attr:`seen`.

        :raises TimeoutError: fewer after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while len(self.seen) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.seen)} of {count} datagrams captured")
            time.sleep(0.02)
            self.collect()
        return self.seen

    def _payload(self, packet: bytes) -> bytes | None:
        header = (packet[0] & 0x0F) * 4
        if packet[9] != socket.IPPROTO_UDP:
            return None
        udp = packet[header : header + 8]
        port = int.from_bytes(udp[2:4], "big")
        payload = packet[header + 8 :]
        return payload if port == self._port and len(payload) == FENCE_REQ_SIZE else None

    def close(self) -> None:
        self._sock.close()


def multicast_sender(ns: NetNS, source: str = "127.0.0.1") -> socket.socket:
    """A UDP socket made in ``ns`` that multicasts from ``source``'s interface (TTL 2, as
    fence_xvm); the caller closes it."""

    def open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        return sock

    return in_netns(ns, open_socket)
