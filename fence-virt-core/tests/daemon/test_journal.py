"""Journal entries with a request's fields, and the request id on foreground log lines.

journald cannot run on the test machines (systemd is not PID 1), so a datagram socket bound
by the test stands in for ``/run/systemd/journal/socket``: it receives exactly the bytes
journald would, which the test decodes by the protocol's rules.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.daemon.journal import JournalHandler, encode_entry, under_journald
from fence_virt.daemon.logs import RequestTag
from fence_virt.tracing import begin_request, current_request_id, request_context


def decode_entry(data: bytes) -> dict[str, str]:
    """The native protocol read back: ``NAME=value`` lines and length-prefixed values."""
    fields: dict[str, str] = {}
    while data:
        line_end = data.index(b"\n")
        line = data[:line_end]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            data = data[line_end + 1 :]
        else:
            name = line
            (size,) = struct.unpack("<Q", data[line_end + 1 : line_end + 9])
            value = data[line_end + 9 : line_end + 9 + size]
            assert data[line_end + 9 + size : line_end + 10 + size] == b"\n"
            data = data[line_end + 10 + size :]
        fields[name.decode()] = value.decode()
    return fields


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[socket.socket, logging.Logger]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "journal.sock"))
        sock.settimeout(5)
        handler = JournalHandler("fence_virtd", address=str(tmp_path / "journal.sock"))
        handler.addFilter(RequestTag())
        logger = logging.getLogger("fence_virt.test_journal")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        try:
            yield sock, logger
        finally:
            logger.removeHandler(handler)
            handler.close()


def test_a_request_summary_carries_its_fields(
    journal: tuple[socket.socket, logging.Logger],
) -> None:
    sock, logger = journal

    def serve() -> str:
        request_id = begin_request()
        logger.info(
            "off vm1: success",
            extra={
                "fv_operation": "off",
                "fv_target": "vm1",
                "fv_requester": "198.51.100.11",
                "fv_listener": "multicast",
                "fv_result": "success",
                "fv_duration_ms": "12.5",
            },
        )
        return request_id

    request_id = contextvars.copy_context().run(serve)
    assert decode_entry(sock.recv(65536)) == {
        "MESSAGE": "off vm1: success",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "fence_virtd",
        "LOGGER": "fence_virt.test_journal",
        "REQUEST_ID": request_id,
        "OPERATION": "off",
        "TARGET": "vm1",
        "REQUESTER": "198.51.100.11",
        "LISTENER": "multicast",
        "RESULT": "success",
        "DURATION_MS": "12.5",
    }
    logger.warning("outside any request")
    entry = decode_entry(sock.recv(65536))
    assert entry["PRIORITY"] == "4"
    assert "REQUEST_ID" not in entry


def test_a_multi_line_message_is_sent_with_its_length(
    journal: tuple[socket.socket, logging.Logger],
) -> None:
    sock, logger = journal
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed")
    entry = decode_entry(sock.recv(65536))
    assert entry["PRIORITY"] == "3"
    assert entry["MESSAGE"].startswith("it failed\nTraceback (most recent call last):")
    assert entry["MESSAGE"].endswith("ValueError: boom")


def test_encoding_of_plain_and_multi_line_values() -> None:
    assert encode_entry({"A": "x=y", "B": "1\n2"}) == b"A=x=y\nB\n" + struct.pack("<Q", 3) + (
        b"1\n2\n"
    )


def test_under_journald_only_when_journal_stream_names_the_stream() -> None:
    with tempfile.TemporaryFile() as stream:
        status = Path(f"/proc/self/fd/{stream.fileno()}").stat()
        named = f"{status.st_dev}:{status.st_ino}"
        assert under_journald({"JOURNAL_STREAM": named}, stream.fileno())
        assert not under_journald({"JOURNAL_STREAM": "1:2"}, stream.fileno())
        assert not under_journald({}, stream.fileno())


def test_request_ids_follow_tasks_not_neighbours() -> None:
    async def main() -> tuple[str | None, str | None, str | None]:
        async def one() -> str | None:
            return current_request_id()

        loop = asyncio.get_running_loop()
        first = loop.create_task(one(), context=request_context())
        second = loop.create_task(one(), context=request_context())
        return await first, await second, current_request_id()

    first, second, outside = asyncio.run(main())
    assert first is not None
    assert second is not None
    assert first != second
    assert outside is None
