"""Our fence_virtd (multicast listener, in-memory backend) served to the C fence_xvm.

Each test starts ``fence_virtd -F`` in its own namespace with its own key, config and pid
file, and runs the Debian ``fence_xvm`` there. The in-memory backend (tests/plugins) lets a
test read in the daemon log how often the backend was really called.
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import time

import pytest

from fence_virt_testinfra.ours import FENCE_XVM

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]


def backend_calls(log: str, operation: str, domain: str) -> int:
    return len(re.findall(rf"INFO: {operation} {re.escape(domain)} \(requester ", log))


def test_every_operation_by_name(ns, key_file, daemons, fence_xvm) -> None:
    daemon = daemons.ours(ns, key_file)

    def xvm(*args: str) -> tuple[int, str, str]:
        done = fence_xvm(ns, key_file, *args)
        return done.returncode, done.stdout, done.stderr

    listing = xvm("-o", "list")
    assert listing[0] == 0
    rows = [line.split() for line in listing[1].splitlines()]
    assert [(r[0], r[2]) for r in rows] == [("vm1", "on"), ("vm2", "on")]
    assert listing[1].splitlines()[0] == f"{'vm1':<32} {rows[0][1]} on"
    assert xvm("-o", "list-status") == listing
    assert xvm("-o", "status", "-H", "vm1") == (0, "Status: ON\n", "")
    assert xvm("-o", "monitor") == (0, "", "")
    assert xvm("-o", "off", "-H", "vm1") == (0, "", "")
    assert xvm("-o", "status", "-H", "vm1") == (2, "Status: OFF\n", "")
    assert xvm("-o", "list")[1].splitlines()[0].endswith(" off")
    assert xvm("-o", "on", "-H", "vm1") == (0, "", "")
    assert xvm("-o", "reboot", "-H", "vm1") == (0, "", "")
    assert xvm("-o", "status", "-n", "vm1") == (0, "Status: ON\n", "")
    assert xvm("-o", "null", "-H", "vm1") == (1, "Operation failed\n", "")
    # deliberate difference from C (which says OFF): an unknown VM is a failure
    assert xvm("-o", "status", "-H", "nosuch") == (1, "Operation failed\n", "")
    log = daemon.log()
    for operation in ("off", "on", "reboot", "null"):
        assert backend_calls(log, operation, "vm1") == 1, log


def test_every_operation_by_uuid(ns, key_file, daemons, fence_xvm) -> None:
    daemons.ours(ns, key_file)
    uuid = fence_xvm(ns, key_file, "-o", "list").stdout.split()[1]
    by_uuid = ("-u", "-H", uuid)
    assert fence_xvm(ns, key_file, "-o", "off", *by_uuid).returncode == 0
    status = fence_xvm(ns, key_file, "-o", "status", *by_uuid)
    assert (status.returncode, status.stdout) == (2, "Status: OFF\n")
    assert fence_xvm(ns, key_file, "-o", "on", *by_uuid).returncode == 0
    status = fence_xvm(ns, key_file, "-o", "status", *by_uuid)
    assert (status.returncode, status.stdout) == (0, "Status: ON\n")
    assert fence_xvm(ns, key_file, "-o", "reboot", *by_uuid).returncode == 0


def test_request_hashes_down_to_the_configured_minimum(ns, key_file, daemons, fence_xvm):
    daemon = daemons.ours(ns, key_file, hash="sha1")
    for hashtype in ("sha1", "sha256", "sha512"):
        done = fence_xvm(ns, key_file, "-c", hashtype, "-o", "status", "-H", "vm1")
        assert (done.returncode, done.stdout) == (0, "Status: ON\n"), hashtype
    assert "dropped" not in daemon.log()


@pytest.mark.parametrize("auth", ["sha1", "sha512"])
def test_challenge_types_when_both_sides_agree(ns, key_file, daemons, fence_xvm, auth) -> None:
    daemons.ours(ns, key_file, auth=auth)
    done = fence_xvm(ns, key_file, "-C", auth, "-o", "status", "-H", "vm2")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
    other = "sha256"
    failed = fence_xvm(ns, key_file, "-C", other, "-t", "2", "-o", "off", "-H", "vm2")
    assert failed.returncode == 1
    assert "Invalid response to challenge" in failed.stdout


def test_default_minimum_refuses_a_sha1_client(ns, key_file, daemons, fence_xvm) -> None:
    daemon = daemons.ours(ns, key_file)
    done = fence_xvm(ns, key_file, "-c", "sha1", "-t", "2", "-o", "off", "-H", "vm1")
    assert done.returncode == 1
    assert "Timed out waiting for response" in done.stdout
    log = daemon.log()
    assert re.search(r"dropped datagram from 127\.0\.0\.1:\d+: hash type sha1 weaker", log)
    assert backend_calls(log, "off", "vm1") == 0


def test_wrong_key_fails_and_the_log_says_why_without_a_digest(
    ns, tmp_path, key_file, daemons, fence_xvm
) -> None:
    daemon = daemons.ours(ns, key_file)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(secrets.token_bytes(4096))
    done = fence_xvm(ns, wrong, "-t", "2", "-o", "off", "-H", "vm1")
    assert done.returncode == 1
    assert "Operation failed" in done.stdout
    log = daemon.log()
    assert re.search(r"dropped datagram from 127\.0\.0\.1:\d+: sha256 signature mismatch", log)
    assert not re.search(r"[0-9a-f]{40}", log), "no digest in the log"
    assert backend_calls(log, "off", "vm1") == 0


def test_ipv6_across_a_veth_pair(guest_host, key_file, daemons, fence_xvm) -> None:
    pair = guest_host
    daemon = daemons.ours(pair.host, key_file, family="ipv6", interface=pair.host_if)
    args = ("-i", "ipv6", "-a", "ff05::3:1")
    done = fence_xvm(pair.guest, key_file, *args, "-o", "status", "-H", "vm1")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
    listing = fence_xvm(pair.guest, key_file, "-a", "ff05::3:1", "-o", "list")
    assert listing.returncode == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["vm1", "vm2"]
    assert f"status vm1 (requester {pair.guest_ip6}," in daemon.log()


def test_a_daemon_on_another_port_is_not_involved(ns, key_file, daemons, fence_xvm) -> None:
    ours = daemons.ours(ns, key_file)
    other = daemons.ours(ns, key_file, port="1230")
    done = fence_xvm(ns, key_file, "-p", "1230", "-o", "off", "-H", "vm1")
    assert done.returncode == 0
    assert backend_calls(other.log(), "off", "vm1") == 1
    assert fence_xvm(ns, key_file, "-o", "status", "-H", "vm1").stdout == "Status: ON\n"
    assert backend_calls(ours.log(), "off", "vm1") == 0
    assert "request 1 seqno" not in ours.log(), "the off request never reached port 1229"


def test_copies_from_every_guest_address_execute_once(
    guest_host, key_file, daemons, fence_xvm
) -> None:
    """fence_xvm sends one datagram per local address; a guest with two gets one reboot."""
    pair = guest_host
    pair.add_guest_ip("198.51.100.12")
    daemon = daemons.ours(pair.host, key_file, interface=pair.host_if)
    done = fence_xvm(pair.guest, key_file, "-o", "reboot", "-H", "vm2")
    assert done.returncode == 0, done.stderr
    log = daemon.log()
    assert backend_calls(log, "reboot", "vm2") == 1, log
    assert "retransmit, dropped" in log, "the second copy must have arrived to prove anything"


def test_flood_of_malformed_packets_then_a_valid_request(
    ns, key_file, daemons, fence_xvm, netns_call
) -> None:
    daemon = daemons.ours(ns, key_file)
    valid_looking = bytes([1, 2, 4, 0]) + b"vm1".ljust(64, b"\0") + bytes(108)

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1")
            )
            for n in range(3000):
                size = (0, 1, 100, 175, 176, 177, 2000)[n % 7]
                data = valid_looking if size == 176 and n % 2 else secrets.token_bytes(size)
                sock.sendto(data, ("225.0.0.12" if n % 3 else "127.0.0.1", 1229))

    netns_call(ns, flood)
    done = fence_xvm(ns, key_file, "-o", "off", "-H", "vm1")
    assert done.returncode == 0, done.stderr
    log = daemon.log()
    assert backend_calls(log, "off", "vm1") == 1
    assert "dropped datagram from 127.0.0.1:" in log
    assert "Traceback" not in log
    assert daemon.process.poll() is None


def test_daemon_refuses_to_start_without_its_key_file(ns, tmp_path, daemons) -> None:
    missing = tmp_path / "absent.key"
    with pytest.raises(RuntimeError) as caught:
        daemons.ours(ns, missing)
    assert f"key file {missing}: No such file or directory" in str(caught.value)


def test_unauthenticated_mode_only_when_configured(ns, key_file, daemons, fence_xvm) -> None:
    daemons.ours(ns, key_file, hash="none", auth="none")
    done = fence_xvm(ns, key_file, "-c", "none", "-C", "none", "-o", "status", "-H", "vm1")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n")
    signed = fence_xvm(ns, key_file, "-C", "none", "-o", "status", "-H", "vm1")
    assert (signed.returncode, signed.stdout) == (0, "Status: ON\n")


#: ``fence_xvm -H $'caf\xe9'``: the byte 0xE9 (Latin-1 e-acute), not UTF-8; subprocess writes
#: a lone surrogate escape back as that byte
LATIN1_NAME = "caf\udce9"


def test_a_latin1_name_from_the_c_agent_fails_at_once(ns, key_file, daemons, fence_xvm) -> None:
    """Issue 21 B6: the authentic request cannot name a VM of ours (no UTF-8 name); it is
    answered FAIL at once, without the backend, instead of leaving fence_xvm to its timeout."""
    daemon = daemons.ours(ns, key_file)
    started = time.monotonic()
    done = fence_xvm(ns, key_file, "-t", "20", "-o", "off", "-H", LATIN1_NAME)
    elapsed = time.monotonic() - started
    assert (done.returncode, done.stdout) == (1, "Operation failed\n"), done.stderr
    assert elapsed < 5, f"answered after {elapsed:.1f} s: the client waited for its timeout"
    log = daemon.log()
    assert re.search(
        r"request 1 seqno \d+ domain caf\\xe9 from 127\.0\.0\.1: cannot be carried out "
        r"\(domain is not valid UTF-8.*\): answered 1",
        log,
    ), log
    assert "INFO: off " not in log, "the backend must not be asked"
    # the same agent with a real name is still served
    assert fence_xvm(ns, key_file, "-o", "status", "-H", "vm1").stdout == "Status: ON\n"


def test_static_map_entries_in_either_ipv4_mapped_form_match(
    ns, key_file, daemons, fence_xvm
) -> None:
    """Issue 21 D10: ``::ffff:7f00:1`` (hex) and ``::ffff:127.0.0.1`` in a static map are the
    IPv4 requester 127.0.0.1 that the C fence_xvm connects back from."""
    groups = (
        'groups {\n\tgroup {\n\t\tip = "::ffff:7f00:1";\n\t\tuuid = "vm1";\n\t}\n'
        '\tgroup {\n\t\tip = "::FFFF:127.0.0.1";\n\t\tuuid = "vm2";\n\t}\n'
        '\tgroup {\n\t\tip = "198.51.100.9";\n\t\tuuid = "vm3";\n\t}\n}\n'
    )
    backend = "".join(f'\t\tvm = "vm{n}";\n' for n in (1, 2, 3))
    backend = "backends {\n\tmemory {\n" + backend + "\t}\n}\n"
    daemons.ours(ns, key_file, backend=backend + groups)
    assert fence_xvm(ns, key_file, "-o", "status", "-H", "vm1").stdout == "Status: ON\n"
    assert fence_xvm(ns, key_file, "-o", "status", "-H", "vm2").stdout == "Status: ON\n"
    denied = fence_xvm(ns, key_file, "-o", "status", "-H", "vm3")
    assert (denied.returncode, denied.stdout) == (3, "Permission denied\n")


def test_a_repeated_key_warns_with_both_lines_and_the_last_wins_as_in_c(
    ns, key_file, daemons, fence_xvm
) -> None:
    """Issue 21 D11: a C config whose multicast block says ``port`` twice still serves on the
    last port (as the C daemon would), and the log names both lines."""
    text = (
        'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "memory";\n}\n'
        "listeners {\n\tmulticast {\n"
        f'\t\tkey_file = "{key_file}";\n\t\tinterface = "lo";\n'
        '\t\tport = "1230";\n\t\tport = "1229";\n\t}\n}\n'
        'backends {\n\tmemory {\n\t\tvm = "vm1";\n\t}\n}\n'
    )
    daemon = daemons.ours_text(ns, text)
    assert fence_xvm(ns, key_file, "-o", "status", "-H", "vm1").stdout == "Status: ON\n"
    assert re.search(
        r"fence_virt\.conf:10: key 'port' in listeners/multicast is written 2 times "
        r"\(also at line 9\): the last one is used",
        daemon.log(),
    ), daemon.log()


def test_a_unicast_multicast_address_is_refused_before_anything_is_sent(
    ns, key_file, daemons, fence_xvm
) -> None:
    """Issue 21 D12: ``-a 127.0.0.1`` names no group. The C agent says it cannot join it,
    sends nothing and waits its whole timeout; ours stops at once with the reason (also for
    validate-all, so Pacemaker's validation catches it) and sends nothing either."""
    daemon = daemons.ours(ns, key_file)
    theirs = fence_xvm(ns, key_file, "-a", "127.0.0.1", "-t", "2", "-o", "status", "-H", "vm1")
    assert theirs.returncode == 1
    assert "Failed to add multicast membership to transmit socket 127.0.0.1" in theirs.stdout + (
        theirs.stderr
    )
    assert "Timed out waiting for response" in theirs.stdout + theirs.stderr
    refused = "Invalid multicast address: '127.0.0.1' is not a multicast group (224.0.0.0/4)\n"
    for operation in ("status", "validate-all"):
        started = time.monotonic()
        mine = subprocess.run(
            ns.argv(
                FENCE_XVM, "-k", str(key_file), "-a", "127.0.0.1", "-o", operation, "-H", "vm1"
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert mine.returncode == 1, mine
        assert mine.stdout.startswith(refused), mine.stdout
        assert time.monotonic() - started < 2
    assert "seqno" not in daemon.log(), "no request may reach the daemon"
    assert fence_xvm(ns, key_file, "-o", "status", "-H", "vm1").stdout == "Status: ON\n"
