""":class:`StreamListener`: a whole listener around the stream server, over a UNIX socket.

The socket opener returns a listening UNIX socket in the test's directory (no network);
the client is the kit's codec client and the dispatcher the kit's recording stand-in (the
tcp and vsock plugins' own tests run the same class through fence_virtd).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from fence_virt.errors import LocalError
from fence_virt.listening import ReplaySettings, StreamListener
from fence_virt.protocol import HashType, Operation, Response
from fence_virt.protocol.v2 import ProtocolMode
from fence_virt.testing import RecordingDispatcher, client_session
from fence_virt.testing.factories import fence_request

KEY = b"stream listener key\n"


@dataclass(frozen=True)
class Settings:
    """The fields :class:`StreamListenerSettings` asks for, as a plugin's block has them."""

    name: str
    path: Path
    max_connections: int = 4
    hash: HashType = HashType.SHA256
    auth: HashType = HashType.SHA256
    request_timeout: float = 1.0
    io_timeout: float = 5.0
    protocol: ProtocolMode = ProtocolMode.C
    v2_window: float = 30.0

    @property
    def replay(self) -> ReplaySettings:
        return ReplaySettings(600.0, None)

    def describe(self) -> str:
        return f"unix {self.path}"


def unix_listening(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen()
    return sock


def test_serves_a_request_names_the_requester_and_logs_per_instance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings("guests", tmp_path / "fence.sock")
    opened: list[Path] = []

    def open_socket() -> socket.socket:
        opened.append(settings.path)
        return unix_listening(settings.path)

    listener = StreamListener(
        settings, KEY, open_socket=open_socket, requester=lambda _peer: "unix-peer"
    )
    dispatcher = RecordingDispatcher(response=Response.OFF)

    async def scenario() -> bytes:
        caplog.set_level(logging.INFO, logger="fence_virt.listener.guests")
        await listener.start(dispatcher)
        try:
            reader, writer = await asyncio.open_unix_connection(str(settings.path))
            writer.write(fence_request(Operation.STATUS, "vm1", key=KEY).encode())
            return await client_session(reader, writer, HashType.SHA256, KEY)
        finally:
            await listener.stop()

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == bytes([Response.OFF])
    assert opened == [settings.path]
    assert [(op, target.domain, target.requester) for op, target in dispatcher.fenced] == [
        (Operation.STATUS, "vm1", "unix-peer")
    ]
    assert listener.log.name == "fence_virt.listener.guests"
    assert f"listening on unix {settings.path}" in caplog.text
    assert listener.server is None


def test_a_second_start_is_refused_naming_the_instance(tmp_path: Path) -> None:
    settings = Settings("twice", tmp_path / "fence.sock")
    listener = StreamListener(
        settings,
        KEY,
        open_socket=lambda: unix_listening(settings.path),
        requester=lambda _peer: "x",
    )

    async def scenario() -> None:
        await listener.start(RecordingDispatcher())
        try:
            with pytest.raises(LocalError, match=r"listener twice \(unix .*\) started twice"):
                await listener.start(RecordingDispatcher())
        finally:
            await listener.stop()
        await listener.stop()  # stopping a stopped listener does nothing

    asyncio.run(asyncio.wait_for(scenario(), 30))
