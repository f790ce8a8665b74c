"""QEMU's guestfwd in miniature, for vmchannel tests with the C ``fence_virt -A``.

A vmchannel guest reaches the host through a libvirt ``<channel type='unix'>`` with a
``guestfwd`` target: every TCP connection the guest opens to 10.0.2.179:1229 is carried over
the one chardev connection that fence_virtd holds on the domain's UNIX socket. socat can
stand in for one session only (recipes §3b: it exits when the TCP client leaves, and the C
daemon never reconnects); :class:`GuestForward` keeps the UNIX connection and relays each TCP
session, one at a time, as QEMU does. What the host writes while no session is open (the
result that trails a host list, read by no client) is dropped, so it cannot pass for the
next client's answer. Run it on a loop inside a test namespace
(:class:`fence_virt_testinfra.setns.NetnsLoop`) so the TCP side stays there.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

__all__ = ["GuestForward"]

_CHUNK = 4096


class GuestForward:
    """Listens on ``socket`` (the host connects, as to QEMU) and on TCP ``host``:``port``
    (the guest's agent connects); relays each TCP session over the host's latest connection.

    ::

        forward = GuestForward(sock_dir / "vm1-chan.sock", port=12290)
        ns_loop.run(forward.start())
        ... fence_virt -A 127.0.0.1 -p 12290 -o status -H vm2   (inside the namespace)
        ns_loop.run(forward.close())
    """

    def __init__(self, socket: Path, port: int, host: str = "127.0.0.1") -> None:
        self.socket = socket
        self.port = port
        self.host = host
        #: connections the host made to the socket so far
        self.connections = 0
        self._line: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._arrived: asyncio.Event | None = None
        #: the guest session the host's bytes go to; None: they are dropped
        self._guest: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session = asyncio.Lock()
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        """Listen on both sides."""
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._arrived = asyncio.Event()
        self._servers = [
            await asyncio.start_unix_server(self._host_connected, path=str(self.socket)),
            await asyncio.start_server(self._guest_session, self.host, self.port),
        ]

    async def close(self) -> None:
        """Stop listening and drop the host's connection."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        if self._line is not None:
            self._line[1].close()
            self._line = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    async def connected(self, timeout: float = 10) -> None:
        """Wait until the host holds the chardev connection."""
        assert self._arrived is not None, "start() first"
        async with asyncio.timeout(timeout):
            await self._arrived.wait()

    async def _host_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._line is not None:
            self._line[1].close()
        self._line = (reader, writer)
        self.connections += 1
        assert self._arrived is not None
        self._arrived.set()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while chunk := await reader.read(_CHUNK):
                if self._guest is not None:
                    self._guest.write(chunk)
        except OSError:
            pass
        finally:
            self._tasks.discard(task)

    async def _guest_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async with self._session:
            try:
                await self.connected()
                assert self._line is not None
                self._guest = writer
                host_writer = self._line[1]
                while chunk := await reader.read(_CHUNK):
                    host_writer.write(chunk)
                    await host_writer.drain()
            except (OSError, TimeoutError):
                pass
            finally:
                self._guest = None
                writer.close()
