"""For tests of listeners that serve guests on UNIX sockets (serial, vmchannel): the QEMU side.

QEMU listens on a guest's UNIX socket (libvirt ``<source mode='bind'>``) and the host daemon
connects to it (c-suite-spec §1.5). :class:`GuestEnd` listens on such a path as QEMU would and
lets a test write what a guest's ``fence_virt`` writes -- serial requests, junk, half a
request -- and read the host's answers, with the product's own codec. :func:`guest_harness`
makes a :class:`~fence_virt.testing.ListenerHarness` of it for the listener contract suite.

UNIX socket paths are limited to 107 bytes, which pytest's ``tmp_path`` can exceed:
:func:`short_tmp_dir` gives a short directory under ``/tmp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

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
from fence_virt.testing.listener_contract import ClientRequest, ListenerHarness

_T = TypeVar("_T")

__all__ = ["GuestEnd", "guest_harness", "malformed_serial_inputs", "short_tmp_dir"]

#: seconds a test waits for the host by default
DEFAULT_TIMEOUT = 10.0
#: seconds a harness client waits for an answer that may rightly not come (a dropped copy)
NO_ANSWER = 2.0


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
        """Wait until the host is connected (a connection it has closed does not count);
        TimeoutError otherwise."""
        assert self._arrived is not None, "start() first"
        async with asyncio.timeout(timeout):
            while self._streams is None or self._streams[0].at_eof():
                self._arrived.clear()
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


def malformed_serial_inputs() -> tuple[bytes, ...]:
    """What a guest may write that a serial listener must drop without acting: a console
    line, 74 zero bytes (C would carry out request 0 for domain ""), a request with a wrong
    magic (C does not check it), one with a flag no client sets, and a request cut short
    (the next request's magic then lands in its zero padding)."""
    valid = SerialRequest(request=int(Operation.OFF), domain="vm1", seqno=4242).encode()
    return (
        b"login: \r\n",
        bytes(len(valid)),
        b"xxxx" + valid[4:],
        valid[:4] + bytes([valid[4], 0x40]) + valid[6:],
        valid[:40],
    )


def guest_harness(
    *, plugin: object, name: str, config: str, socket: Path, requester: str
) -> ListenerHarness:
    """A :class:`~fence_virt.testing.ListenerHarness` whose client is a :class:`GuestEnd` on
    ``socket``: for a listener that finds the guest's socket (through ``config``) and connects
    to it. Each test's coroutine runs on a fresh loop, with the guest listening first.

    :param requester: the identity the listener must vouch for: the guest's domain UUID.
    :returns: a harness with ``send``, ``send_bytes``, :func:`malformed_serial_inputs` and
        ``send_copies`` (copies written back to back), for :class:`ListenerContract` and
        :class:`RetransmitContract`.
    """
    guest = GuestEnd(socket)

    async def answer_of(request: ClientRequest, copies: int, timeout: float) -> Response | None:
        await guest.connected()
        data = guest.request(request.operation, request.domain, seqno=request.seqno)
        await guest.send(data * copies)
        try:
            return Response(await guest.answer(timeout))
        except TimeoutError:
            return None

    async def send(request: ClientRequest) -> Response | None:
        return await answer_of(request, 1, DEFAULT_TIMEOUT)

    async def send_copies(request: ClientRequest, copies: int) -> Response | None:
        return await answer_of(request, copies, NO_ANSWER)

    async def send_bytes(data: bytes) -> None:
        await guest.connected()
        await guest.send(data)

    def run(coro: Coroutine[Any, Any, _T]) -> _T:
        async def with_guest() -> _T:
            async with guest:
                return await coro

        return asyncio.run(with_guest())

    return ListenerHarness(
        plugin=plugin,
        name=name,
        config=config,
        requester=requester,
        send=send,
        send_bytes=send_bytes,
        malformed=malformed_serial_inputs(),
        send_copies=send_copies,
        run=run,
        timeout=15,
    )
