"""Dropped serial input reaches the ``fence_virt_request_dropped`` observers, end to end.

Our fence_virtd (serial listener, libvirt backend on the lab's hand-started libvirtd) runs
with the test kit's recorder extension, which appends every finished request and every
dropped input to JSON-lines files. The test is the guest: it writes on the PTY socat gives
for the guest's serial socket (the guest's ttyS1) -- bytes that are not a request, then one
serial request twice (the second within C's 10-s window is a replay).

Network safety: the serial transport uses no network; the daemon runs in the test's
namespace all the same (the lab's ``daemons`` fixture).
"""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path
from typing import Any

import pytest

from fence_virt.protocol import SERIAL_RESP_SIZE, Operation, SerialRequest, SerialResponse
from fence_virt_testinfra.processes import wait_until

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read_exactly(fd: int, size: int, timeout: float = 10) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no answer on the guest's line after {data!r}")
        data += os.read(fd, size - len(data))
    return data


def test_noise_and_a_replay_reach_the_drop_observers(lab, daemons, pty_guests, tmp_path) -> None:
    guest, victim = lab.start("guest"), lab.vm("victim")
    tty = pty_guests.listen(guest.serial[0])
    finished, drops = tmp_path / "finished.jsonl", tmp_path / "drops.jsonl"
    daemons.ours_text(
        f"""fence_virtd {{ listener = "serial"; backend = "libvirt"; }}
listeners {{ serial {{ uri = "{lab.uri}"; path = "{lab.dir}"; }} }}
backends {{ libvirt {{ uri = "{lab.uri}"; }} }}
extensions {{ recorder {{ file = "{finished}"; drops = "{drops}"; }} }}
"""
    )
    pty_guests.wait(tty)
    line = os.open(tty, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(line, b"login: root\n")
        wait_until(lambda: len(rows(drops)) == 1, 10, "the noise's drop to be observed")
        [noise] = rows(drops)
        assert (noise["listener"], noise["kind"]) == ("serial", "malformed")
        assert guest.uuid in noise["requester"] or guest.name in noise["requester"], noise

        request = SerialRequest(request=Operation.STATUS, domain=victim.name, seqno=4242)
        os.write(line, request.encode())
        answer = SerialResponse.decode(read_exactly(line, SERIAL_RESP_SIZE))
        assert answer.response == 0  # the victim runs
        os.write(line, request.encode())  # the same request again: a replay
        wait_until(lambda: len(rows(drops)) == 2, 10, "the replay's drop to be observed")
    finally:
        os.close(line)
    replay = rows(drops)[1]
    assert (replay["listener"], replay["kind"]) == ("serial", "replay")
    assert "the same request came in the last 10 s" in replay["reason"]
    assert replay["requester"] == noise["requester"]
    served = rows(finished)
    assert [(row["operation"], row["domain"], row["listener"]) for row in served] == [
        ("status", victim.name, "serial")
    ]
