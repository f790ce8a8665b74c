"""Dropped tcp connections reach the ``fence_virt_request_dropped`` observers, end to end.

Our fence_virtd (tcp listener, in-memory backend) runs in the test's namespace with the test
kit's recorder extension, which appends every finished request and every dropped input to
JSON-lines files; the C ``fence_virt -T`` (always with an explicit target) sends a request
signed with a wrong key, one hashed below the listener's minimum, and a valid one.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from fence_virt_testinfra.c_tcp import TcpSetup
from fence_virt_testinfra.processes import wait_until

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

LOOPBACK = "127.0.0.1"
MEMORY_BACKEND = 'memory {\n\t\tvm = "vm1";\n\t\tvm = "vm2";\n\t}'


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_refused_connections_reach_the_drop_observers(
    ns, tmp_path, key_file, daemons, fence_virt
) -> None:
    finished, drops = tmp_path / "finished.jsonl", tmp_path / "drops.jsonl"
    setup = TcpSetup(key_file, backend="memory", backend_block=MEMORY_BACKEND)
    recorder = f'extensions {{\n\trecorder {{ file = "{finished}"; drops = "{drops}"; }}\n}}\n'
    daemons.ours_text(ns, setup.config_text() + recorder)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(secrets.token_bytes(4096))

    done = fence_virt(ns, wrong, LOOPBACK, "-o", "off", "-H", "vm1")
    assert done.returncode == 1
    wait_until(lambda: len(rows(drops)) == 1, 10, "the wrong key's drop to be observed")
    [drop] = rows(drops)
    assert drop["listener"] == "tcp"
    assert drop["requester"] == LOOPBACK
    assert drop["kind"] == "authentication"
    assert "signature mismatch" in drop["reason"]

    done = fence_virt(ns, key_file, LOOPBACK, "-c", "sha1", "-o", "off", "-H", "vm1")
    assert done.returncode == 1
    wait_until(lambda: len(rows(drops)) == 2, 10, "the weak hash's drop to be observed")
    weak = rows(drops)[1]
    assert (weak["listener"], weak["requester"], weak["kind"]) == (
        "tcp",
        LOOPBACK,
        "authentication",
    )
    assert "weaker than" in weak["reason"]

    done = fence_virt(ns, key_file, LOOPBACK, "-o", "status", "-H", "vm1")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
    wait_until(lambda: len(rows(finished)) == 1, 10, "the valid request to be observed")
    assert rows(finished)[0]["response"] == "success"
    assert len(rows(drops)) == 2  # a valid request is no drop
    assert not any(row["domain"] == "vm1" and row["operation"] == "off" for row in rows(finished))
