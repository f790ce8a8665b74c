"""One fence_virtd serving a multicast guest cluster and two tcp guest clusters against one
backend.

Three listener instances -- ``multicast`` (the multicast plugin, key A), ``tcp`` (key A,
port 1240) and ``tcp-b`` (the tcp plugin, key B, port 1241, its own static map) -- on the
in-memory backend. The C ``fence_xvm`` and ``fence_virt -T`` sign with key A or B; each
request reaches only the instance whose key signed it, and every instance acts on the same
VMs. (The tcp ports differ from 1229 because ``fence_xvm`` listens on TCP 1229 for the
multicast connect-back.)
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.tools import unavailable

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]


def config_text(key_a: Path, key_b: Path) -> str:
    return f"""
fence_virtd {{
    listener = "multicast";
    listener = "tcp";
    listener = "tcp-b";
    backend = "memory";
}}
listeners {{
    multicast {{
        key_file = "{key_a}";
        interface = "lo";
    }}
    tcp {{
        key_file = "{key_a}";
        port = "1240";
    }}
    tcp-b {{
        plugin = "tcp";
        key_file = "{key_b}";
        port = "1241";
        groups {{
            group {{ ip = "127.0.0.1"; uuid = "vm2"; }}
        }}
    }}
}}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
"""


def served(log: str, listener: str, operation: str, domain: str) -> int:
    pattern = rf"INFO: {operation} {domain} \(requester [^,]+, seqno \d+, listener {listener}\)"
    return len(re.findall(pattern, log))


def test_tcp_instances_beside_a_multicast_one(ns, tmp_path, daemons, fence_xvm, fence_virt) -> None:
    if not entry_points(group="fence_virt.listeners", name="multicast"):
        unavailable("fence-virt-listener-multicast is not installed")
    key_a, key_b = write_key(tmp_path / "a.key"), write_key(tmp_path / "b.key")
    daemon = daemons.ours_text(ns, config_text(key_a, key_b))

    def tcp(key: Path, port: int, *args: str) -> tuple[int, str]:
        done = fence_virt(ns, key, "127.0.0.1", "-o", *args, port=port)
        return done.returncode, done.stdout

    # each instance serves its own clients, on the one backend
    assert tcp(key_a, 1240, "off", "-H", "vm1") == (0, "")
    done = fence_xvm(ns, key_a, "-t", "5", "-o", "status", "-H", "vm1")
    assert (done.returncode, done.stdout) == (2, "Status: OFF\n")
    assert tcp(key_b, 1241, "status", "-H", "vm2") == (0, "Status: ON\n")
    assert fence_xvm(ns, key_a, "-t", "5", "-o", "on", "-H", "vm1").returncode == 0
    assert tcp(key_a, 1240, "status", "-H", "vm1") == (0, "Status: ON\n")
    # a key on the other instance's port is refused there, unexecuted
    assert tcp(key_a, 1241, "off", "-H", "vm2")[0] == 1
    assert tcp(key_b, 1240, "off", "-H", "vm2")[0] == 1
    # tcp-b's own static map: vm2 only; the other instances have none (open, as in C)
    assert tcp(key_b, 1241, "off", "-H", "vm1") == (3, "Permission denied\n")
    assert tcp(key_a, 1240, "status", "-H", "vm2") == (0, "Status: ON\n")
    log = daemon.log()
    assert served(log, "tcp", "off", "vm1") == 1
    assert served(log, "multicast", "status", "vm1") == 1
    assert served(log, "multicast", "on", "vm1") == 1
    assert served(log, "tcp-b", "status", "vm2") == 1
    assert served(log, "tcp-b", "off", "vm2") == 0
    assert served(log, "tcp", "off", "vm2") == 0
    assert re.search(
        r"fence_virt\.listener\.tcp-b WARNING: dropped connection from .*mismatch", log
    )
    assert re.search(r"fence_virt\.listener\.tcp WARNING: dropped connection from .*mismatch", log)
