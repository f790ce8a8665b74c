"""The QEMU side of a guest's serial or vmchannel socket, in Python, for tests of listeners.

QEMU listens on a guest's UNIX socket (libvirt ``<source mode='bind'>``) and fence_virtd
connects to it (c-suite-spec §1.5). :class:`GuestEnd` listens on such a path as QEMU would and
lets a test write what a guest's ``fence_virt`` writes -- serial requests, junk, half a
request -- and read the host's answers. It speaks the protocol with fence-virt's own codec
(:mod:`fence_virt.protocol`); the C ``fence_virt`` on a socat PTY is the other guest
(:mod:`fence_virt_testinfra.channels`).

UNIX socket paths are limited to 107 bytes, which pytest's ``tmp_path`` can exceed:
:func:`short_tmp_dir` gives a short directory under ``/tmp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fence_virt.protocol import (
    SERIAL_MAGIC,
    SERIAL_RESP_SIZE,
    HostListDecoder,
    HostState,
    Operation,
    Response,
    SerialRequest,
    SerialResponse,
)

__all__ = ["GuestEnd", "short_tmp_dir"]

#: seconds a test waits for the host by default
DEFAULT_TIMEOUT = 10.0


@contextlib.contextmanager
def short_tmp_dir(prefix: str = "fvs") -> Iterator[Path]:
    """A fresh directory ``/tmp/PREFIXxxxxxxxx`` (short enough for socket paths), removed
    with its contents afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _listing(decoder: HostListDecoder) -> bool:
    """The answer is a host list (its trailing result follows the terminator)."""
    return decoder.response == Response.HOSTLIST


class GuestEnd:
    """Listens on ``path`` as QEMU does; the host's latest connection is the guest's line.

    ::

        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            await guest.connected()                         # the listener found the socket
            assert await guest.call(Operation.STATUS, "vm2") is Response.SUCCESS
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: connections the host made so far
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._arrived: asyncio.Event | None = None
        self._pending = bytearray()
        self._seqnos = iter(range(1, 1 << 32))

    async def __aenter__(self) -> GuestEnd:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen (a stale socket file at ``path`` is replaced)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._arrived = asyncio.Event()
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path))

    async def close(self) -> None:
        """Stop listening and hang up on the host."""
        self.hang_up()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def hang_up(self) -> None:
        """Close the current connection (the host sees EOF), keep listening."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
        self._pending.clear()
        if self._arrived is not None:
            self._arrived.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._streams is not None:
            self._streams[1].close()
        self._streams = (reader, writer)
        self._pending.clear()
        self.connections += 1
        assert self._arrived is not None
        self._arrived.set()

    async def connected(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the host is connected; TimeoutError otherwise."""
        assert self._arrived is not None, "start() first"
        async with asyncio.timeout(timeout):
            await self._arrived.wait()

    def _line(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            raise ConnectionError(f"the host is not connected to {self.path}")
        return self._streams

    async def send(self, data: bytes) -> None:
        """Write raw bytes to the host."""
        writer = self._line()[1]
        writer.write(data)
        await writer.drain()

    def request(
        self, operation: Operation | int, domain: str = "", *, seqno: int | None = None
    ) -> bytes:
        """The 74 bytes of a serial request; a fresh seqno unless one is given."""
        number = next(self._seqnos) if seqno is None else seqno
        return SerialRequest(request=int(operation), domain=domain, seqno=number).encode()

    async def answer(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """The next serial_resp_t's code; TimeoutError if none comes, EOFError at hang-up."""
        async with asyncio.timeout(timeout):
            while True:
                start = self._pending.find(SERIAL_MAGIC)
                if start >= 0 and len(self._pending) >= start + SERIAL_RESP_SIZE:
                    frame = bytes(self._pending[start : start + SERIAL_RESP_SIZE])
                    del self._pending[: start + SERIAL_RESP_SIZE]
                    return SerialResponse.decode(frame).response
                await self._more()

    async def _more(self) -> None:
        chunk = await self._line()[0].read(4096)
        if not chunk:
            raise EOFError(f"the host closed {self.path}")
        self._pending += chunk

    async def call(
        self,
        operation: Operation | int,
        domain: str = "",
        *,
        seqno: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response | int:
        """Send one request, return the answer (a :class:`Response` when it is one)."""
        await self.send(self.request(operation, domain, seqno=seqno))
        code = await self.answer(timeout)
        try:
            return Response(code)
        except ValueError:
            return code

    async def hostlist(
        self, *, timeout: float = DEFAULT_TIMEOUT
    ) -> tuple[int | None, list[HostState]]:
        """Send a list request; (the leading response, the records), also reading the
        trailing result so that it cannot pass for the next request's answer."""
        await self.send(self.request(Operation.HOSTLIST))
        decoder = HostListDecoder(serial=True)
        states: list[HostState] = []
        async with asyncio.timeout(timeout):
            while not decoder.done or (_listing(decoder) and decoder.result is None):
                if not self._pending:
                    await self._more()
                data = bytes(self._pending)
                self._pending.clear()
                states += decoder.feed(data)
        return decoder.response, states
