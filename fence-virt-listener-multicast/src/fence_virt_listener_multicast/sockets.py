"""Sockets: the group's UDP socket and the TCP connect-back, with C's timeouts.

Receive socket as in C (c-suite-spec §2.8): UDP bound to the wildcard address and the port,
group joined on the configured interface (IPv4 ``ip_mreqn`` with the ifindex, IPv6
``ipv6_mreq``). Ours also sets ``IP_MULTICAST_ALL`` to 0, so datagrams sent to *other* groups
on the same port are not delivered to us (Linux delivers them by default), and IPv6 sockets
are IPv6-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
import struct
from typing import Final

from fence_virt.errors import ProtocolError, RemoteError, UserError
from fence_virt_listener_multicast.settings import Family, MulticastSettings

__all__ = ["SocketChannel", "connect_back", "open_group_socket"]

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


class SocketChannel:
    """:class:`~fence_virt_listener_multicast.session.Channel` over a connected TCP socket.

    Every read and every write has ``timeout`` seconds; failures become RemoteError. Each
    first tries the socket directly and involves the event loop (and a timer) only when the
    kernel cannot complete it at once: on a LAN the peer's bytes are usually there already.
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()

    async def read_exactly(self, size: int) -> bytes:
        received = bytearray()
        try:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                received += self._chunk(size)
            if len(received) < size:
                async with asyncio.timeout(self._timeout):
                    while len(received) < size:
                        chunk = await self._loop.sock_recv(self._sock, size - len(received))
                        received += self._checked(chunk, len(received), size)
        except TimeoutError:
            raise RemoteError(f"client sent nothing for {self._timeout:g} s") from None
        except OSError as exc:
            raise RemoteError(f"reading from client: {exc.strerror or exc}") from None
        return bytes(received)

    def _chunk(self, size: int) -> bytes:
        return self._checked(self._sock.recv(size), 0, size)

    @staticmethod
    def _checked(chunk: bytes, got: int, size: int) -> bytes:
        if not chunk:
            raise ProtocolError(f"client closed the connection after {got} of {size} bytes")
        return chunk

    async def write(self, data: bytes) -> None:
        try:
            sent = 0
            with contextlib.suppress(BlockingIOError, InterruptedError):
                sent = self._sock.send(data)
            if sent < len(data):
                async with asyncio.timeout(self._timeout):
                    await self._loop.sock_sendall(self._sock, data[sent:])
        except TimeoutError:
            raise RemoteError(f"client took no data for {self._timeout:g} s") from None
        except OSError as exc:
            raise RemoteError(f"writing to client: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._sock.close()


async def connect_back(host: str, port: int, *, timeout: float, io_timeout: float) -> SocketChannel:
    """TCP connection to the client; OSError or TimeoutError if it does not answer in time."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex((host, port))
        if error in _IN_PROGRESS:
            if not _writable_now(sock):
                async with asyncio.timeout(timeout):
                    await _writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))
    except BaseException:
        sock.close()
        raise
    return SocketChannel(sock, io_timeout)


#: connect_ex results meaning "handshake under way"
_IN_PROGRESS: Final = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EINTR})


def _writable_now(sock: socket.socket) -> bool:
    """Whether a pending connect has finished; over loopback it has, inside connect()."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(0))


async def _writable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
