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
line, or for ``list`` one ``name uuid state`` line per VM followed by ``.``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from fence_virt import Availability, ConfigSection, Dispatcher, Target, hookimpl
from fence_virt.protocol import Operation

_OPERATIONS = {
    "null": Operation.NULL,
    "off": Operation.OFF,
    "on": Operation.ON,
    "reboot": Operation.REBOOT,
    "status": Operation.STATUS,
    "monitor": Operation.DEVSTATUS,
}


@dataclass(frozen=True)
class MemoryListenerConfig:
    socket: Path | None = None
    requester: str = "memory"


class LineListener:
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
        self._server = await asyncio.start_unix_server(self._serve, path=str(self._path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def _answer(self, line: str) -> str:
        assert self._dispatcher is not None
        words = line.split()
        if not words:
            return "1"
        if words[0] == "list":
            states = await self._dispatcher.hostlist(self._requester)
            return "".join(f"{s.domain} {s.uuid} {s.state}\n" for s in states) + "."
        operation = _OPERATIONS.get(words[0])
        if operation is None:
            return "1"
        target = Target(
            domain=words[1] if len(words) > 1 else "",
            by_uuid=False,
            requester=self._requester,
            seqno=0,
        )
        return str(int(await self._dispatcher.fence(operation, target)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((await self._answer(line.decode(errors="replace"))).encode() + b"\n")
                await writer.drain()
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
    def fence_virt_listener_create(self, section: ConfigSection) -> LineListener:
        settings = section.load(MemoryListenerConfig)
        if settings.socket is None:
            raise section.error("socket", 'needs socket = "PATH";')
        return LineListener(settings.socket, settings.requester)
