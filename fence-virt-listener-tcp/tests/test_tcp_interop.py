"""Interop matrix: the same C ``fence_virt -T`` commands against the C fence_virtd's tcp
listener and against ours.

Both daemons serve the tcp listener and the libvirt backend on libvirt's ``test:///default``
(one running domain, ``test``), each freshly started in a fresh namespace, so each side
begins from the same state. A table's rows run in order (they change state); stdout and exit
code must be equal row by row, except the deliberate differences in ``DIFFERENT``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.c_tcp import TcpSetup
from fence_virt_testinfra.interop import Outcome, mismatches
from fence_virt_testinfra.netns import NetNS, netns

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
#: ``-H $'caf\xe9'``: a Latin-1 name (the byte 0xE9 on the wire, not UTF-8), issue 21 B6
LATIN1_NAME = "caf\udce9"
#: replaced by the path of a key the daemons do not have
WRONG_KEY = "{wrong key}"
#: two addresses of the daemon's namespace (on lo): a client connecting to one comes from it
ALLOWED, OTHER = "198.51.100.2", "198.51.100.3"

#: (label, -T address, agent arguments)
Row = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True)
class Table:
    rows: list[Row]
    #: TcpSetup fields for both daemons
    setup: dict[str, Any] = field(default_factory=dict)


def rows(address: str, *items: tuple[str, tuple[str, ...]]) -> list[Row]:
    return [(label, address, args) for label, args in items]


OPERATIONS = Table(
    rows(
        "127.0.0.1",
        ("list", ("-o", "list")),
        ("list-status", ("-o", "list-status")),
        ("monitor", ("-o", "monitor")),
        ("status running", ("-o", "status", "-H", "test")),
        ("status unknown", ("-o", "status", "-H", "nosuch")),
        ("null", ("-o", "null", "-H", "test")),
        ("off", ("-o", "off", "-H", "test")),
        ("status after off", ("-o", "status", "-H", "test")),
        ("off again", ("-o", "off", "-H", "test")),
        ("list while off", ("-o", "list")),
        ("on", ("-o", "on", "-n", "test")),
        ("status after on", ("-o", "status", "-n", "test")),
        ("reboot", ("-o", "reboot", "-H", "test")),
        ("status after reboot", ("-o", "status", "-H", "test")),
        ("status by uuid", ("-o", "status", "-H", UUID)),
        ("off by uuid", ("-o", "off", "-H", UUID)),
        ("status by uuid after off", ("-o", "status", "-H", UUID)),
        ("on by uuid", ("-o", "on", "-H", UUID)),
        ("reboot by uuid", ("-o", "reboot", "-H", UUID)),
        ("off unknown", ("-o", "off", "-H", "nosuch")),
        ("sha512 request", ("-c", "sha512", "-o", "status", "-H", "test")),
        ("sha1 request refused", ("-c", "sha1", "-o", "off", "-H", "test")),
        ("wrong key", ("-k", WRONG_KEY, "-o", "off", "-H", "test")),
        ("off latin-1 name", ("-o", "off", "-H", LATIN1_NAME)),
        ("list at the end", ("-o", "list")),
    )
)
WEAK_MINIMUM = Table(
    rows(
        "127.0.0.1",
        *(
            (f"{h} request", ("-c", h, "-o", "status", "-H", "test"))
            for h in ("sha1", "sha256", "sha512")
        ),
    ),
    setup={"hash": "sha1"},
)
#: a static map: 198.51.100.2 may act on ``test``, nobody else on anything
STATIC_MAP = Table(
    [
        *rows(
            OTHER,
            ("list from the other address", ("-o", "list")),
            ("status denied", ("-o", "status", "-H", "test")),
            ("off denied", ("-o", "off", "-H", "test")),
            ("monitor unchecked", ("-o", "monitor")),
        ),
        *rows(
            ALLOWED,
            ("list from the allowed address", ("-o", "list")),
            ("off allowed", ("-o", "off", "-H", "test")),
            ("status allowed", ("-o", "status", "-H", "test")),
            ("on by uuid not listed", ("-o", "on", "-H", UUID)),
        ),
    ],
    setup={"address": "0.0.0.0", "groups": [("guest", [ALLOWED], ["test"])]},
)
IPV6 = Table(
    rows(
        "::1",
        ("list", ("-o", "list")),
        ("off", ("-o", "off", "-H", "test")),
        ("status", ("-o", "status", "-H", "test")),
        ("on by uuid", ("-o", "on", "-H", UUID)),
    ),
    setup={"family": "ipv6", "address": "::1"},
)
#: C stores ``auth`` into the hash minimum and always challenges with sha256 (§3.3)
AUTH_SHA512 = Table(
    rows(
        "127.0.0.1",
        (
            "sha512 challenge, sha512 request",
            ("-C", "sha512", "-c", "sha512", "-o", "status", "-H", "test"),
        ),
        ("sha256 challenge, sha512 request", ("-c", "sha512", "-o", "status", "-H", "test")),
    ),
    setup={"auth": "sha512"},
)

#: the agent's output when the host hung up on it during the challenge
_HUNG_UP = (1, "Invalid response to challenge\nOperation failed\n")
#: the agent's output when the host answered its challenge with another algorithm
_WRONG_PROOF = (1, "Hash mismatch:\nC = ...\nH = ...\nR = ...\n" + _HUNG_UP[1])
#: rows where we differ on purpose (README, "Deliberate differences")
DIFFERENT = {
    # an unknown VM is a failure, not "off" (the libvirt backend's README)
    "status unknown": {"c": (2, "Status: OFF\n"), "ours": (1, "Operation failed\n")},
    # auth is the challenge algorithm here, the hash minimum in C
    "sha512 challenge, sha512 request": {"c": _WRONG_PROOF, "ours": (0, "Status: ON\n")},
    "sha256 challenge, sha512 request": {"c": (0, "Status: ON\n"), "ours": _WRONG_PROOF},
}


class Matrix:
    """Runs a table on one side ("c" or "ours") in a fresh namespace."""

    def __init__(self, tmp_path: Path, key_file: Path, daemons, fence_virt) -> None:
        self.key = key_file
        self.wrong_key = write_key(tmp_path / "wrong.key")
        self.daemons = daemons
        self.fence_virt = fence_virt
        #: the daemon log of each side's last table
        self.logs: dict[str, str] = {}

    @contextmanager
    def place(self) -> Iterator[NetNS]:
        with netns("tx") as ns:
            for address in (ALLOWED, OTHER):
                ns.ip("addr", "add", f"{address}/32", "dev", "lo")
            yield ns

    def run(self, side: str, table: Table) -> dict[str, Outcome]:
        start = self.daemons.c if side == "c" else self.daemons.ours
        with self.place() as ns:
            daemon = start(ns, TcpSetup(self.key, **table.setup))
            results = {
                label: self.outcome(ns, address, args) for label, address, args in table.rows
            }
            daemon.stop()
            self.logs[side] = daemon.log()
        return results

    def outcome(self, ns: NetNS, address: str, args: tuple[str, ...]) -> Outcome:
        key = self.key
        if args[:2] == ("-k", WRONG_KEY):
            key, args = self.wrong_key, args[2:]
        done = self.fence_virt(ns, key, address, *args)
        return done.returncode, _without_noise(done.stdout + done.stderr)

    def both(self, table: Table) -> tuple[dict[str, Outcome], dict[str, Outcome]]:
        return self.run("c", table), self.run("ours", table)


def _without_noise(text: str) -> str:
    """What the agent prints without the parts that depend on timing or chance: the random
    challenge dumps of a hash mismatch, and the errno of a read the host cut short (a reset
    or an end of file, depending on when the host closed)."""
    kept = []
    for line in text.splitlines(keepends=True):
        if line[:4] in ("C = ", "H = ", "R = "):
            kept.append(line[:4] + "...\n")
        elif line.startswith("Error reading challenge response"):  # no newline after errno
            _, marker, rest = line.partition("Invalid response")
            kept.append(marker + rest)
        else:
            kept.append(line)
    return "".join(kept)


@pytest.fixture
def matrix(tmp_path, key_file, daemons, fence_virt) -> Matrix:
    return Matrix(tmp_path, key_file, daemons, fence_virt)


def test_operations_names_uuids_hashes_and_keys(matrix: Matrix) -> None:
    c, ours = matrix.both(OPERATIONS)
    assert mismatches(c, ours, DIFFERENT) == []
    # not vacuous: the C side behaves as the reference recipes recorded (§3c)
    assert c["list"] == (0, f"{'test':<32} {UUID} on\n")
    assert c["status after off"] == (2, "Status: OFF\n")
    assert ours["list while off"] == (0, f"{'test':<32} {UUID} off\n")
    assert ours["wrong key"] == _HUNG_UP
    assert ours["off latin-1 name"] == (1, "Operation failed\n"), "answered, not hung up"
    ours_log = matrix.logs["ours"]
    assert "dropped connection from 127.0.0.1: sha256 signature mismatch (wrong key?)" in ours_log
    assert "dropped connection from 127.0.0.1: hash type sha1 weaker than required" in ours_log


def test_hash_minimum_sha1_accepts_every_hash(matrix: Matrix) -> None:
    c, ours = matrix.both(WEAK_MINIMUM)
    assert mismatches(c, ours, DIFFERENT) == []
    assert set(ours.values()) == {(0, "Status: ON\n")}


def test_static_map_by_peer_address(matrix: Matrix) -> None:
    c, ours = matrix.both(STATIC_MAP)
    assert mismatches(c, ours, DIFFERENT) == []
    assert ours["list from the other address"] == (0, "")
    assert ours["off denied"] == (3, "Permission denied\n")
    assert ours["off allowed"] == (0, "")
    assert ours["on by uuid not listed"] == (3, "Permission denied\n")


def test_ipv6(matrix: Matrix) -> None:
    c, ours = matrix.both(IPV6)
    assert mismatches(c, ours, DIFFERENT) == []
    assert ours["status"] == (2, "Status: OFF\n")
    assert "status test (requester ::1, " in matrix.logs["ours"]


def test_auth_is_the_challenge_algorithm_not_c_s_hash_minimum(matrix: Matrix) -> None:
    c, ours = matrix.both(AUTH_SHA512)
    assert mismatches(c, ours, DIFFERENT) == []


def test_a_silent_client_holds_up_c_but_not_us(matrix: Matrix, netns_call) -> None:
    """C's listener serves one connection at a time: a client that connects and sends
    nothing makes the next one wait for its 1-s deadline. Ours serves the next at once."""
    import socket

    waited = {}
    for side in ("c", "ours"):
        start = matrix.daemons.c if side == "c" else matrix.daemons.ours
        with matrix.place() as ns:
            start(ns, TcpSetup(matrix.key))
            silent = netns_call(ns, lambda ns=ns: socket.create_connection(("127.0.0.1", 1229)))
            try:
                began = time.monotonic()
                done = matrix.fence_virt(ns, matrix.key, "127.0.0.1", "-o", "status", "-H", "test")
                waited[side] = time.monotonic() - began
            finally:
                silent.close()
            assert (done.returncode, done.stdout) == (0, "Status: ON\n"), side
    assert waited["c"] >= 0.9, f"the C daemon did not wait: {waited}"
    assert waited["ours"] < 0.6, f"ours waited: {waited}"
