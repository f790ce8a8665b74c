"""A connected stream socket on the asyncio loop, with a deadline on every read and write.

Works for any connected ``SOCK_STREAM`` socket: the multicast connect-back (TCP), a TCP or
vsock listener's accepted connection, a UNIX socket. Every failure the peer can cause
(silence, hang-up, reset) becomes a :class:`~fence_virt.errors.RemoteError`, so a runner
needs one ``except`` per request.
"""

from __future__ import annotations

import asyncio
import socket

from fence_virt.errors import ProtocolError, RemoteError

__all__ = ["SocketChannel"]


class SocketChannel:
    """:class:`fence_virt.listening.Channel` over a connected stream socket.

    Each read and each write must finish within :attr:`timeout` seconds; a runner may change
    the attribute between steps (e.g. C's tcp listener: 1 s for the request, then 10 s for
    each handshake step). The channel owns the socket: :meth:`close` closes it.
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        """``sock``: connected, non-blocking; ``timeout``: seconds per read or write.

        Must be built on the running event loop's thread.
        """
        self._sock = sock
        #: seconds each :meth:`read_exactly` / :meth:`write` may take
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()

    async def read_exactly(self, size: int) -> bytes:
        """``size`` bytes, or RemoteError: the peer did not send them all within
        :attr:`timeout` seconds, closed the connection early (ProtocolError, naming how many
        bytes came) or reset it.
        """
        received = bytearray()
        try:
            async with asyncio.timeout(self.timeout):
                while len(received) < size:
                    chunk = await self._loop.sock_recv(self._sock, size - len(received))
                    if not chunk:
                        got = len(received)
                        message = f"client closed the connection after {got} of {size} bytes"
                        raise ProtocolError(message)
                    received += chunk
        except TimeoutError:
            if received:
                message = f"client sent only {len(received)} of {size} bytes in {self.timeout:g} s"
                raise RemoteError(message) from None
            raise RemoteError(f"client sent nothing for {self.timeout:g} s") from None
        except OSError as exc:
            raise RemoteError(f"reading from client: {exc.strerror or exc}") from None
        return bytes(received)

    async def write(self, data: bytes) -> None:
        """Send all of ``data`` within :attr:`timeout` seconds, or RemoteError."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._loop.sock_sendall(self._sock, data)
        except TimeoutError:
            raise RemoteError(f"client took no data for {self.timeout:g} s") from None
        except OSError as exc:
            raise RemoteError(f"writing to client: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        self._sock.close()
