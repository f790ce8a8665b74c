"""One fence_virtd serving two guest clusters and a third transport against one backend.

Two multicast listener instances, each with its own key, port and static map, plus the
in-memory listener (tests/plugins), all on the in-memory backend; the C fence_xvm signs with
cluster A's or cluster B's key. A request reaches only the instance whose key signed it, and
every instance acts on the same backend.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fence_virt.testing.memory import ask
from fence_virt_testinfra.c_suite import write_key

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]


def config_text(tmp_path: Path, key_a: Path, key_b: Path) -> str:
    return f"""
fence_virtd {{
    listener = "cluster-a";
    listener = "cluster-b";
    listener = "memory";
    backend = "memory";
}}
listeners {{
    cluster-a {{
        plugin = "multicast";
        key_file = "{key_a}";
        interface = "lo";
    }}
    cluster-b {{
        plugin = "multicast";
        key_file = "{key_b}";
        interface = "lo";
        port = "1230";
        groups {{
            group {{ ip = "127.0.0.1"; uuid = "vm2"; }}
        }}
    }}
    memory {{ socket = "{tmp_path}/memory.sock"; }}
}}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
"""


def served(log: str, listener: str, operation: str, domain: str) -> int:
    pattern = rf"INFO: {operation} {domain} \(requester [^,]+, seqno \d+, listener {listener}\)"
    return len(re.findall(pattern, log))


def test_each_key_reaches_only_its_own_instance(ns, tmp_path, daemons, fence_xvm) -> None:
    key_a, key_b = write_key(tmp_path / "a.key"), write_key(tmp_path / "b.key")
    daemon = daemons.ours_text(ns, config_text(tmp_path, key_a, key_b))

    def xvm(key: Path, port: str, *args: str) -> tuple[int, str]:
        done = fence_xvm(ns, key, "-p", port, "-t", "3", *args)
        return done.returncode, done.stdout

    # each cluster's key on its own port is served
    assert xvm(key_a, "1229", "-o", "status", "-H", "vm1") == (0, "Status: ON\n")
    assert xvm(key_b, "1230", "-o", "status", "-H", "vm2") == (0, "Status: ON\n")
    # cluster A's key on cluster B's port (and the reverse) is refused there, unexecuted
    assert xvm(key_a, "1230", "-o", "off", "-H", "vm2")[0] == 1
    assert xvm(key_b, "1229", "-o", "off", "-H", "vm1")[0] == 1
    log = daemon.log()
    assert served(log, "cluster-b", "off", "vm2") == 0
    assert served(log, "cluster-a", "off", "vm1") == 0
    assert re.search(
        r"fence_virt\.listener\.cluster-b WARNING: dropped datagram from .*mismatch", log
    )
    assert re.search(
        r"fence_virt\.listener\.cluster-a WARNING: dropped datagram from .*mismatch", log
    )
    # cluster B's own static map: vm2 only; cluster A has none (open, as in C)
    assert xvm(key_b, "1230", "-o", "off", "-H", "vm1") == (3, "Permission denied\n")
    assert xvm(key_b, "1230", "-o", "off", "-H", "vm2") == (0, "")
    # one backend behind every instance: B's off is seen by A and by the memory listener
    assert xvm(key_a, "1229", "-o", "status", "-H", "vm2") == (2, "Status: OFF\n")
    assert ask(tmp_path / "memory.sock", "status vm2", "on vm2") == ["2", "0"]
    assert xvm(key_b, "1230", "-o", "status", "-H", "vm2") == (0, "Status: ON\n")
    log = daemon.log()
    assert served(log, "cluster-b", "off", "vm2") == 1
    assert served(log, "memory", "on", "vm2") == 1
    assert "listener: multicast from fence-virt-listener-multicast" in log
    assert "as instance cluster-b" in log
