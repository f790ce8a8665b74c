"""Sockets: the group's UDP socket and the TCP connect-back, with C's timeouts.

Receive socket as in C (c-suite-spec §2.8): UDP bound to the wildcard address and the port,
group joined on the configured interface (IPv4 ``ip_mreqn`` with the ifindex, IPv6
``ipv6_mreq``). Ours also sets ``IP_MULTICAST_ALL`` to 0, so datagrams sent to *other* groups
on the same port are not delivered to us (Linux delivers them by default), and IPv6 sockets
are IPv6-only.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Final

from fence_virt.errors import UserError
from fence_virt.listening import SocketChannel
from fence_virt_listener_multicast.settings import Family, MulticastSettings

__all__ = ["connect_back", "open_group_socket"]

#: linux/in.h and linux/in6.h; Python's socket module does not export them
IP_MULTICAST_ALL: Final = 49
IPV6_MULTICAST_ALL: Final = 29


def open_group_socket(settings: MulticastSettings) -> socket.socket:
    """A bound, non-blocking UDP socket that is a member of the group; UserError if not."""
    ipv4 = settings.family is Family.IPV4
    sock = socket.socket(socket.AF_INET if ipv4 else socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if ipv4:
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
        _bind(sock, "0.0.0.0" if ipv4 else "::", settings.port)  # noqa: S104 (as C: any address)
        _join(sock, settings)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind(sock: socket.socket, address: str, port: int) -> None:
    try:
        sock.bind((address, port))
    except OSError as exc:
        raise UserError(f"cannot bind UDP port {port}: {exc.strerror}") from exc


def _join(sock: socket.socket, settings: MulticastSettings) -> None:
    group = settings.group.packed
    try:
        if settings.family is Family.IPV4:
            mreqn = struct.pack("=4s4si", group, bytes(4), settings.ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            mreq = struct.pack("=16sI", group, settings.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except OSError as exc:
        where = settings.interface or "the default interface"
        hint = "" if settings.interface else ' (set interface = "...")'
        raise UserError(
            f"cannot join multicast group {settings.group} on {where}: {exc.strerror}{hint}"
        ) from exc


async def connect_back(host: str, port: int, *, timeout: float, io_timeout: float) -> SocketChannel:
    """TCP connection to the client within ``timeout`` seconds, as a channel whose reads and
    writes each get ``io_timeout`` seconds; OSError or TimeoutError if it does not answer."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return SocketChannel(sock, io_timeout)
