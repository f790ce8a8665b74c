"""Interop matrix: the same C fence_xvm commands against the C fence_virtd and against ours.

Both daemons serve the multicast listener and the libvirt backend on the same test-driver
node (three domains: running, shut off, paused with a long name), each freshly started in
fresh namespaces, so each side begins from the node file's states. A table's rows run in
order (they change state); stdout and exit code must be equal row by row, except the
deliberate difference listed in ``DIFFERENT``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fence_virt_testinfra.c_suite import MulticastSetup, write_key, write_test_node
from fence_virt_testinfra.interop import Outcome, mismatches
from fence_virt_testinfra.netns import NetNS, netns

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

VM3 = "vm3-with-a-long-name-0123456789"
UUID2 = "22222222-2222-2222-2222-222222222222"
UUID3 = "33333333-3333-3333-3333-333333333333"
#: ``-H $'caf\xe9'``: a Latin-1 name (the byte 0xE9 on the wire, not UTF-8), issue 21 B6
LATIN1_NAME = "caf\udce9"
#: replaced by the path of a key the daemons do not have
WRONG_KEY = "{wrong key}"

Row = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Table:
    rows: list[Row]
    #: MulticastSetup fields for both daemons
    setup: dict[str, Any] = field(default_factory=dict)
    #: "lo": daemon and client in one namespace; "veth6": IPv6 from a guest namespace
    topology: str = "lo"
    #: also start a second daemon on this port (it must stay uninvolved)
    second_port: int | None = None


OPERATIONS = Table(
    [
        ("list", ("-o", "list")),
        ("list-status", ("-o", "list-status")),
        ("monitor", ("-o", "monitor")),
        ("status running", ("-o", "status", "-H", "vm1")),
        ("status shut off", ("-o", "status", "-H", "vm2")),
        ("status paused", ("-o", "status", "-H", VM3)),
        ("status unknown", ("-o", "status", "-H", "nosuch")),
        ("null", ("-o", "null", "-H", "vm1")),
        ("off", ("-o", "off", "-H", "vm1")),
        ("status after off", ("-o", "status", "-H", "vm1")),
        ("off again", ("-o", "off", "-H", "vm1")),
        ("reboot while off", ("-o", "reboot", "-H", "vm1")),
        ("status still off", ("-o", "status", "-n", "vm1")),
        ("on", ("-o", "on", "-H", "vm2")),
        ("on again", ("-o", "on", "-H", "vm2")),
        ("status after on", ("-o", "status", "-H", "vm2")),
        ("reboot paused", ("-o", "reboot", "-H", VM3)),
        ("list after", ("-o", "list")),
        ("status by uuid", ("-o", "status", "-u", "-H", UUID3)),
        ("off by uuid", ("-o", "off", "-u", "-H", UUID2)),
        ("status by uuid after off", ("-o", "status", "-u", "-H", UUID2)),
        ("on by uuid", ("-o", "on", "-u", "-H", UUID2)),
        ("reboot by uuid", ("-o", "reboot", "-u", "-H", UUID2)),
        ("off unknown", ("-o", "off", "-H", "nosuch")),
        ("on unknown", ("-o", "on", "-H", "nosuch")),
        ("sha512 request", ("-c", "sha512", "-o", "status", "-H", "vm2")),
        ("sha1 request refused", ("-c", "sha1", "-t", "2", "-o", "off", "-H", "vm2")),
        ("wrong key", ("-k", WRONG_KEY, "-t", "2", "-o", "off", "-H", "vm2")),
        ("off latin-1 name", ("-o", "off", "-H", LATIN1_NAME)),
        ("list at the end", ("-o", "list")),
    ]
)
WEAK_MINIMUM = Table(
    [
        (f"{h} request", ("-c", h, "-o", "status", "-H", "vm1"))
        for h in ("sha1", "sha256", "sha512")
    ],
    setup={"hash": "sha1"},
)
SHA512_CHALLENGE = Table(
    [
        ("same auth", ("-C", "sha512", "-o", "status", "-H", "vm1")),
        ("other auth", ("-C", "sha1", "-t", "2", "-o", "status", "-H", "vm1")),
    ],
    setup={"auth": "sha512"},
)
IPV6 = Table(
    [
        ("list", ("-i", "ipv6", "-a", "ff05::3:1", "-o", "list")),
        ("off", ("-a", "ff05::3:1", "-o", "off", "-H", "vm1")),
        ("status", ("-a", "ff05::3:1", "-o", "status", "-H", "vm1")),
        ("on by uuid", ("-a", "ff05::3:1", "-o", "on", "-u", "-H", UUID2)),
        ("reboot", ("-i", "ipv6", "-o", "reboot", "-H", "vm1")),
    ],
    setup={"family": "ipv6", "interface": "hveth"},
    topology="veth6",
)
SECOND_DAEMON = Table(
    [
        ("off through the other port", ("-p", "1230", "-o", "off", "-H", "vm1")),
        ("status here", ("-o", "status", "-H", "vm1")),
        ("status there", ("-p", "1230", "-o", "status", "-H", "vm1")),
    ],
    second_port=1230,
)
#: a static map: 127.0.0.1 may act on vm1 and vm2 (by UUID) only
STATIC_MAP = Table(
    [
        ("list filtered", ("-o", "list")),
        ("status allowed by name", ("-o", "status", "-H", "vm1")),
        ("status denied", ("-o", "status", "-H", VM3)),
        ("off denied", ("-o", "off", "-H", VM3)),
        ("status allowed by uuid", ("-o", "status", "-u", "-H", UUID2)),
        ("vm2 by name is not listed", ("-o", "status", "-H", "vm2")),
        ("monitor unchecked", ("-o", "monitor")),
        ("null unchecked", ("-o", "null", "-H", VM3)),
    ],
    setup={"groups": [("cluster", ["127.0.0.1"], ["vm1", UUID2])]},
)

#: rows where we differ on purpose (README, "Deliberate differences"): C says OFF
DIFFERENT = {
    "status unknown": {"c": (2, "Status: OFF\n"), "ours": (1, "Operation failed\n")},
}


class Matrix:
    """Runs a table on one side ("c" or "ours") in fresh namespaces."""

    def __init__(self, tmp_path: Path, key_file: Path, daemons, fence_xvm, guest_host_factory):
        self.tmp = tmp_path
        self.key = key_file
        self.wrong_key = write_key(tmp_path / "wrong.key")
        self.daemons = daemons
        self.fence_xvm = fence_xvm
        self.guest_host_factory = guest_host_factory
        #: the daemon log of each side's last table
        self.logs: dict[str, str] = {}

    @contextlib.contextmanager
    def places(self, table: Table) -> Iterator[tuple[NetNS, NetNS]]:
        """(client namespace, daemon namespace)."""
        if table.topology == "veth6":
            with self.guest_host_factory() as pair:
                yield pair.guest, pair.host
        else:
            with netns("mx") as ns:
                yield ns, ns

    def run(self, side: str, table: Table) -> dict[str, Outcome]:
        node = write_test_node(self.tmp / f"node-{side}.xml")
        start = self.daemons.c_from if side == "c" else self.daemons.ours_from
        with self.places(table) as (client, host):
            setup = MulticastSetup(key_file=self.key, uri=node, **table.setup)
            daemon = start(host, setup)
            if table.second_port is not None:
                other = write_test_node(self.tmp / f"other-{side}.xml")
                start(host, MulticastSetup(key_file=self.key, uri=other, port=table.second_port))
            results = {label: self.outcome(client, args) for label, args in table.rows}
            daemon.stop()
            self.logs[side] = daemon.log()
        return results

    def outcome(self, ns: NetNS, args: tuple[str, ...]) -> Outcome:
        args = tuple(str(self.wrong_key) if a == WRONG_KEY else a for a in args)
        done = self.fence_xvm(ns, self.key, *args)
        return done.returncode, _without_random_dumps(done.stdout + done.stderr)

    def both(self, table: Table) -> tuple[dict[str, Outcome], dict[str, Outcome]]:
        return self.run("c", table), self.run("ours", table)


def _without_random_dumps(text: str) -> str:
    """The client's "Hash mismatch" dump shows random challenges: keep only the line heads."""
    lines = text.splitlines(keepends=True)
    return "".join(
        line[:4] + "...\n" if line[:4] in ("C = ", "H = ", "R = ") else line for line in lines
    )


@pytest.fixture
def matrix(tmp_path, key_file, daemons, fence_xvm, guest_host_factory) -> Matrix:
    return Matrix(tmp_path, key_file, daemons, fence_xvm, guest_host_factory)


def test_operations_names_uuids_hashes_and_keys(matrix: Matrix) -> None:
    c, ours = matrix.both(OPERATIONS)
    assert mismatches(c, ours, DIFFERENT) == []
    # not vacuous: the C side behaves as the reference recipes recorded
    assert c["list"][1].splitlines() == [
        "vm1                              11111111-1111-1111-1111-111111111111 on",
        "vm2                              22222222-2222-2222-2222-222222222222 off",
        f"{VM3}  33333333-3333-3333-3333-333333333333 off",
    ]
    assert c["status paused"] == (0, "Status: ON\n")
    assert ours["status after off"] == (2, "Status: OFF\n")
    assert ours["list after"][1].split()[2::3] == ["off", "on", "on"]
    assert ours["wrong key"] == (1, "Timed out waiting for response\nOperation failed\n")
    assert ours["off latin-1 name"] == (1, "Operation failed\n"), "answered, not timed out"
    ours_log = matrix.logs["ours"]
    assert "sha256 signature mismatch (wrong key?)" in ours_log
    assert "hash type sha1 weaker than required sha256" in ours_log


def test_hash_minimum_sha1_accepts_every_hash(matrix: Matrix) -> None:
    c, ours = matrix.both(WEAK_MINIMUM)
    assert mismatches(c, ours, DIFFERENT) == []
    assert set(ours.values()) == {(0, "Status: ON\n")}


def test_sha512_challenge(matrix: Matrix) -> None:
    c, ours = matrix.both(SHA512_CHALLENGE)
    assert mismatches(c, ours, DIFFERENT) == []
    assert ours["same auth"] == (0, "Status: ON\n")
    assert ours["other auth"][0] == 1


def test_ipv6_across_a_veth_pair(matrix: Matrix) -> None:
    c, ours = matrix.both(IPV6)
    assert mismatches(c, ours, DIFFERENT) == []
    assert ours["status"] == (2, "Status: OFF\n")
    assert ours["list"][0] == 0


def test_a_second_daemon_on_another_port(matrix: Matrix) -> None:
    c, ours = matrix.both(SECOND_DAEMON)
    assert mismatches(c, ours, DIFFERENT) == []
    assert ours["status here"] == (0, "Status: ON\n")
    assert ours["status there"] == (2, "Status: OFF\n")


def test_static_map(matrix: Matrix) -> None:
    c, ours = matrix.both(STATIC_MAP)
    assert mismatches(c, ours, DIFFERENT) == []
    assert [line.split()[0] for line in ours["list filtered"][1].splitlines()] == ["vm1", "vm2"]
    assert ours["status denied"] == (3, "Permission denied\n")
