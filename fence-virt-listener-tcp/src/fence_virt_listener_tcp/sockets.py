"""The listening socket: bound as C's tcp listener binds it, plus what a stream server needs.

As C (tcp.c): ``SO_REUSEADDR``, close-on-exec (Python's default), bound to the configured
address and port. Ours also: IPv6 sockets are IPv6-only (an IPv4 client never appears as
``::ffff:a.b.c.d``, which a static map's ``ip`` entry would not match), ``TCP_NODELAY``
(inherited by every accepted connection: the handshake's 64-byte steps go out at once) and
a backlog of ``SOMAXCONN`` instead of 10, because clients wait there while every
``max_connections`` slot is busy.
"""

from __future__ import annotations

import socket
from typing import Any

from fence_virt.errors import UserError
from fence_virt_listener_tcp.settings import Family, TcpSettings

__all__ = ["address_problem", "open_listening_socket", "peer_ip"]


def open_listening_socket(settings: TcpSettings) -> socket.socket:
    """A bound, listening, non-blocking TCP socket. :raises UserError: naming the address
    when it cannot be bound (in use, not an address of this host, no permission)."""
    sock = _socket(settings)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _bind(sock, settings, settings.port)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def address_problem(settings: TcpSettings) -> str | None:
    """Why the configured address cannot be listened on here, or None; binds an ephemeral
    port of the address for a moment (not the configured port: a running daemon holds it)."""
    try:
        with _socket(settings) as sock:
            _bind(sock, settings, 0)
    except UserError as exc:
        return str(exc)
    return None


def peer_ip(address: Any) -> str:
    """The requester identity of a TCP peer: its numeric IP address (C: ``getnameinfo`` with
    ``NI_NUMERICHOST``), e.g. ``198.51.100.11`` or ``2001:db8::11``."""
    return str(address[0])


def _socket(settings: TcpSettings) -> socket.socket:
    try:
        sock = socket.socket(settings.family.socket_family, socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(f"cannot open an {settings.family.value} socket: {exc.strerror}") from exc
    if settings.family is Family.IPV6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def _bind(sock: socket.socket, settings: TcpSettings, port: int) -> None:
    where = f"[{settings.address}]" if settings.family is Family.IPV6 else str(settings.address)
    try:
        sockaddr = socket.getaddrinfo(
            str(settings.address),
            port,
            settings.family.socket_family,
            socket.SOCK_STREAM,
            0,
            socket.AI_NUMERICHOST,
        )[0][4]
        sock.bind(sockaddr)
    except OSError as exc:
        reason = exc.strerror or exc
        raise UserError(f"cannot listen on TCP {where}:{port or settings.port}: {reason}") from exc
