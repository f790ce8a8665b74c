"""A listener that takes requests as text lines on a UNIX socket (tests only, no auth).

Config::

    listeners {
        memory {
            socket = "/run/fence-virt-test.sock";
            requester = "memory";     # optional: the requester identity of every request
        }
    }

Protocol: the client writes ``OPERATION [DOMAIN]\\n`` (operation names as fence_xvm's ``-o``:
null, off, on, reboot, status, monitor, list); the reply is the response code as a decimal
line, or for ``list`` one ``name uuid state`` line per VM followed by ``.`` (a list that
fails is the one row ``1``). Any other line (unknown operation, extra words, bytes that are
not UTF-8) is answered ``1`` (FAIL) without reaching the dispatcher; a line longer than
:data:`MAX_LINE` bytes is answered ``1`` and the connection closed. The socket is made mode
0600: the protocol has no authentication, so only root may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from fence_virt.config import ConfigSection
from fence_virt.errors import FenceVirtError
from fence_virt.hookspecs import hookimpl
from fence_virt.protocol import Operation, Response
from fence_virt.types import Availability, Dispatcher, Target

__all__ = ["LIST_WORD", "MAX_LINE", "OPERATION_WORDS", "MemoryListener", "MemoryListenerPlugin"]

#: request words of the line protocol and the operation each asks for
OPERATION_WORDS = {
    "null": Operation.NULL,
    "off": Operation.OFF,
    "on": Operation.ON,
    "reboot": Operation.REBOOT,
    "status": Operation.STATUS,
    "monitor": Operation.DEVSTATUS,
}
#: the request word of a host list
LIST_WORD = "list"
#: the answer to a line that is not a request
_REFUSED = str(int(Response.FAIL))
#: longest request line read, newline included (a domain name is at most 63 bytes)
MAX_LINE = 1024


@dataclass(frozen=True)
class MemoryListenerConfig:
    """The ``listeners { memory { ... } }`` block."""

    socket: Path | None = None
    requester: str = "memory"


class MemoryListener:
    """:class:`fence_virt.Listener` serving the line protocol on a UNIX socket."""

    def __init__(self, path: Path, requester: str = "memory") -> None:
        self._path = path
        self._requester = requester
        self._server: asyncio.Server | None = None
        self._dispatcher: Dispatcher | None = None

    def describe(self) -> str:
        return f"memory listener on {self._path}"

    async def start(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self._path), limit=MAX_LINE
        )
        self._path.chmod(0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def _answer(self, line: bytes) -> str:
        assert self._dispatcher is not None
        try:
            words = line.decode().split()
        except UnicodeDecodeError:
            return _REFUSED
        if words == [LIST_WORD]:
            try:
                states = await self._dispatcher.hostlist(self._requester)
            except FenceVirtError:
                return f"{_REFUSED}\n."
            return "".join(f"{s.domain} {s.uuid} {s.state}\n" for s in states) + "."
        if not words or len(words) > 2 or words[0] not in OPERATION_WORDS:
            return _REFUSED
        target = Target(
            domain=words[1] if len(words) > 1 else "",
            by_uuid=False,
            requester=self._requester,
            seqno=0,
        )
        return str(int(await self._dispatcher.fence(OPERATION_WORDS[words[0]], target)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE: answer once, then hang up
                    writer.write(f"{_REFUSED}\n".encode())
                    await writer.drain()
                    return
                if not line:
                    return
                writer.write((await self._answer(line)).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()


class MemoryListenerPlugin:
    """In-memory test listener (text lines on a UNIX socket; not for production)."""

    @hookimpl
    def fence_virt_listener_check(self, section: ConfigSection) -> Availability:
        settings = section.load(MemoryListenerConfig)
        if settings.socket is None:
            return Availability.no(f"no socket configured in {section.path}")
        return Availability.yes(f"socket {settings.socket}")

    @hookimpl
    def fence_virt_listener_create(self, section: ConfigSection) -> MemoryListener:
        settings = section.load(MemoryListenerConfig)
        if settings.socket is None:
            raise section.error("socket", 'needs socket = "PATH";')
        return MemoryListener(settings.socket, settings.requester)
