"""The kit's memory listener holds up to bad input: it has no authentication, so it is
root-only, and a bad line or a failing backend never costs the client its connection."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

from fence_virt.protocol import Response
from fence_virt.testing import RecordingDispatcher
from fence_virt.testing.memory import MemoryListener, ask
from fence_virt.testing.memory.listener import MAX_LINE


def serve(path: Path, dispatcher: RecordingDispatcher, client) -> object:
    async def main() -> object:
        listener = MemoryListener(path)
        await listener.start(dispatcher)
        try:
            return await asyncio.to_thread(client)
        finally:
            await listener.stop()

    return asyncio.run(main())


def test_the_socket_is_root_only(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    mode = serve(path, RecordingDispatcher(), lambda: stat.S_IMODE(path.stat().st_mode))
    assert mode == 0o600


def test_a_failing_list_answers_one_row_and_keeps_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    dispatcher = RecordingDispatcher()
    dispatcher.fail_list = True
    answers = serve(path, dispatcher, lambda: ask(path, "list", "status vm1"))
    assert answers == [str(int(Response.FAIL)), str(int(Response.SUCCESS))]


def test_an_overlong_line_is_refused_then_the_connection_closed(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    dispatcher = RecordingDispatcher()

    def client() -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(b"off " + b"x" * (70 * 1024) + b"\n")
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks)

    assert serve(path, dispatcher, client) == b"1\n"
    assert dispatcher.calls == []
    assert MAX_LINE < 70 * 1024
