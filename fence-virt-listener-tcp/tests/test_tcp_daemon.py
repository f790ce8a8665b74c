"""Our fence_virtd (tcp listener, in-memory backend) served to the C ``fence_virt -T``.

Each test starts ``fence_virtd -F`` in its own namespace with its own key, config and pid
file, and runs Debian's ``fence_virt`` there, always with an explicit ``-T``. The daemon's
log says how often a request reached the dispatcher (one ``INFO`` line each).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from pathlib import Path

import pytest

from fence_virt_testinfra.processes import wait_until

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

LOOPBACK = "127.0.0.1"


def dispatched(log: str, operation: str, domain: str, requester: str = LOOPBACK) -> int:
    """How many ``operation domain`` requests from ``requester`` reached the dispatcher."""
    pattern = rf"INFO: {operation} {re.escape(domain)} \(requester {re.escape(requester)}, "
    return len(re.findall(pattern, log))


def test_every_operation_by_name(ns, key_file, daemons, fence_virt) -> None:
    daemon = daemons.ours_memory(ns, key_file)

    def agent(*args: str) -> tuple[int, str, str]:
        done = fence_virt(ns, key_file, LOOPBACK, *args)
        return done.returncode, done.stdout, done.stderr

    listing = agent("-o", "list")
    assert listing[0] == 0
    rows = [line.split() for line in listing[1].splitlines()]
    assert [(r[0], r[2]) for r in rows] == [("vm1", "on"), ("vm2", "on")]
    assert listing[1].splitlines()[0] == f"{'vm1':<32} {rows[0][1]} on"
    assert agent("-o", "list-status") == listing
    assert agent("-o", "status", "-H", "vm1") == (0, "Status: ON\n", "")
    assert agent("-o", "monitor") == (0, "", "")
    assert agent("-o", "off", "-H", "vm1") == (0, "", "")
    assert agent("-o", "status", "-H", "vm1") == (2, "Status: OFF\n", "")
    assert agent("-o", "list")[1].splitlines()[0].endswith(" off")
    assert agent("-o", "on", "-H", "vm1") == (0, "", "")
    assert agent("-o", "reboot", "-H", "vm1") == (0, "", "")
    assert agent("-o", "status", "-n", "vm1") == (0, "Status: ON\n", "")
    assert agent("-o", "null", "-H", "vm1") == (1, "Operation failed\n", "")
    # deliberate difference from C (which says OFF): an unknown VM is a failure
    assert agent("-o", "status", "-H", "nosuch") == (1, "Operation failed\n", "")
    log = daemon.log()
    for operation in ("off", "on", "reboot", "null"):
        assert dispatched(log, operation, "vm1") == 1, log
    assert "dropped" not in log


def test_every_operation_by_uuid(ns, key_file, daemons, fence_virt) -> None:
    """fence_virt has no ``-u``: a UUID in ``-H`` is recognised by its canonical form."""
    daemons.ours_memory(ns, key_file)
    listing = fence_virt(ns, key_file, LOOPBACK, "-o", "list").stdout
    uuid = listing.splitlines()[1].split()[1]

    def agent(operation: str) -> tuple[int, str]:
        done = fence_virt(ns, key_file, LOOPBACK, "-o", operation, "-H", uuid)
        return done.returncode, done.stdout

    assert agent("off") == (0, "")
    assert agent("status") == (2, "Status: OFF\n")
    assert agent("on") == (0, "")
    assert agent("status") == (0, "Status: ON\n")
    assert agent("reboot") == (0, "")
    assert fence_virt(ns, key_file, LOOPBACK, "-o", "status", "-H", "vm2").stdout == "Status: ON\n"


def test_request_hashes_down_to_the_configured_minimum(ns, key_file, daemons, fence_virt):
    daemon = daemons.ours_memory(ns, key_file, hash="sha1")
    for hashtype in ("sha1", "sha256", "sha512"):
        done = fence_virt(ns, key_file, LOOPBACK, "-c", hashtype, "-o", "status", "-H", "vm1")
        assert (done.returncode, done.stdout) == (0, "Status: ON\n"), hashtype
    assert "dropped" not in daemon.log()


def test_default_minimum_refuses_a_sha1_client(ns, key_file, daemons, fence_virt) -> None:
    daemon = daemons.ours_memory(ns, key_file)
    done = fence_virt(ns, key_file, LOOPBACK, "-c", "sha1", "-o", "off", "-H", "vm1")
    assert done.returncode == 1
    assert "Operation failed" in done.stdout
    log = daemon.log()
    assert "dropped connection from 127.0.0.1: hash type sha1 weaker than" in log
    assert dispatched(log, "off", "vm1") == 0


@pytest.mark.parametrize("auth", ["sha1", "sha512"])
def test_challenge_types_when_both_sides_agree(ns, key_file, daemons, fence_virt, auth) -> None:
    daemon = daemons.ours_memory(ns, key_file, auth=auth)
    done = fence_virt(ns, key_file, LOOPBACK, "-C", auth, "-o", "status", "-H", "vm2")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
    failed = fence_virt(ns, key_file, LOOPBACK, "-C", "sha256", "-o", "off", "-H", "vm2")
    assert failed.returncode == 1
    assert "Invalid response to challenge" in failed.stdout
    assert dispatched(daemon.log(), "off", "vm2") == 0


def test_wrong_key_fails_and_the_log_says_why_without_a_digest(
    ns, tmp_path, key_file, daemons, fence_virt
) -> None:
    daemon = daemons.ours_memory(ns, key_file)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(secrets.token_bytes(4096))
    done = fence_virt(ns, wrong, LOOPBACK, "-o", "off", "-H", "vm1")
    assert done.returncode == 1
    assert "Operation failed" in done.stdout
    log = daemon.log()
    assert "dropped connection from 127.0.0.1: sha256 signature mismatch" in log
    assert not re.search(r"[0-9a-f]{40}", log), "no digest in the log"
    assert dispatched(log, "off", "vm1") == 0


def test_static_map_by_peer_address(ns, key_file, daemons, fence_virt) -> None:
    """Two addresses in the namespace: the static map knows the first only. The agent
    connecting to one of them comes from that address, which is the requester."""
    allowed, other = "198.51.100.2", "198.51.100.3"
    for address in (allowed, other):
        ns.ip("addr", "add", f"{address}/32", "dev", "lo")
    groups = [("guest-a", [allowed], ["vm1"])]
    daemon = daemons.ours_memory(ns, key_file, address="0.0.0.0", groups=groups)

    def agent(via: str, *args: str) -> tuple[int, str]:
        done = fence_virt(ns, key_file, via, *args)
        return done.returncode, done.stdout

    assert agent(other, "-o", "off", "-H", "vm1") == (3, "Permission denied\n")
    assert agent(other, "-o", "list") == (0, "")
    assert agent(allowed, "-o", "off", "-H", "vm2") == (3, "Permission denied\n")
    assert agent(allowed, "-o", "off", "-H", "vm1") == (0, "")
    listed = agent(allowed, "-o", "list")
    assert [line.split()[0] for line in listed[1].splitlines()] == ["vm1"]
    log = daemon.log()
    assert dispatched(log, "off", "vm1", requester=other) == 1  # answered PERM
    assert re.search(rf"off vm1 for {re.escape(other)} \(listener tcp\): ", log)
    assert "off vm1 (requester 198.51.100.2, " in log


def test_ipv6(ns, key_file, daemons, fence_virt) -> None:
    daemon = daemons.ours_memory(ns, key_file, family="ipv6", address="::1")
    done = fence_virt(ns, key_file, "::1", "-o", "status", "-H", "vm1")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
    assert dispatched(daemon.log(), "status", "vm1", requester="::1") == 1


def test_a_silent_client_does_not_block_a_valid_one(
    ns, netns_call, key_file, daemons, fence_virt
) -> None:
    """C serves one connection at a time: its tcp listener makes every client wait for the
    1-s deadline of a client that connected and said nothing. Here the valid client is
    served at once, and the silent one is dropped at its own deadline."""
    daemon = daemons.ours_memory(ns, key_file)
    silent = netns_call(ns, lambda: socket.create_connection((LOOPBACK, 1229)))
    try:
        started = time.monotonic()
        done = fence_virt(ns, key_file, LOOPBACK, "-o", "status", "-H", "vm1")
        elapsed = time.monotonic() - started
        assert (done.returncode, done.stdout) == (0, "Status: ON\n")
        assert elapsed < 0.8, f"the valid client waited {elapsed:.2f} s"
        silent.settimeout(5)
        assert silent.recv(1) == b"", "the silent client was not dropped"
        assert time.monotonic() - started >= 0.9
    finally:
        silent.close()
    assert "dropped connection from 127.0.0.1: client sent nothing for 1 s" in daemon.log()


def test_a_flood_of_garbage_connections_then_a_valid_request(
    ns, netns_call, key_file, daemons, fence_virt
) -> None:
    daemon = daemons.ours_memory(ns, key_file)

    def flood() -> None:
        for _ in range(300):
            with socket.create_connection((LOOPBACK, 1229)) as sock:
                sock.sendall(os.urandom(176))

    netns_call(ns, flood)
    done = fence_virt(ns, key_file, LOOPBACK, "-o", "off", "-H", "vm1")
    assert (done.returncode, done.stdout) == (0, "")
    wait_until(lambda: dispatched(daemon.log(), "off", "vm1") == 1, 10, "the valid request")
    drops = daemon.log().count("WARNING: dropped connection from 127.0.0.1: ")
    assert 50 <= drops <= 110, f"{drops} drop lines: not one per connection, rate-limited"


def test_the_c_listener_s_auth_quirk_is_not_copied(
    ns, tmp_path: Path, key_file, daemons, fence_virt
):
    """C's tcp listener stores ``auth`` into the hash minimum and always challenges with
    sha256 (c-suite-spec §3.3). Here ``auth`` is the challenge algorithm, as for multicast:
    ``auth = "sha512"`` needs ``fence_virt -C sha512``, and a sha256 request still passes."""
    daemons.ours_memory(ns, key_file, auth="sha512")
    done = fence_virt(
        ns, key_file, LOOPBACK, "-C", "sha512", "-c", "sha256", "-o", "status", "-H", "vm1"
    )
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
