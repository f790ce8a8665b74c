"""Where our agents are stricter than C (issue 21 D13; docs/differences-from-c.md, "Where the
agents are stricter than C"): each difference with our answer and C's.

``validate-all`` runs as Pacemaker runs it (``stonith_admin --validate``, ``pcs
--agent-validation``): options on stdin. A number C silently wraps, a multicast address of
the other family, a name where an address belongs: C says valid and the run then fences with
another value (or nothing); we say why not. With no usable IPv6 source address both say
valid; the run fails at once with ours where C waits out its timeout.

Safety: every run is inside the module's namespace (``lo`` only); the C ``fence_virt`` always
has ``ipaddr=`` on stdin, and no row reaches a daemon (validate-all sends nothing; the IPv6
run has no address to send from).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fence_virt_testinfra import c_suite
from fence_virt_testinfra.c_tcp import run_c_fence_virt
from fence_virt_testinfra.netns import NetNS

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

# one path per test process (the key fixture creates it; the same path inside the namespace):
# a fixed name was deleted under a run by another session's fixture on a shared machine
KEY = f"/tmp/fvt-agent-stricter-{os.getpid()}.key"


@pytest.fixture(scope="module", autouse=True)
def key() -> object:
    path = c_suite.write_key(Path(KEY))
    yield path
    path.unlink()


#: (extra stdin lines, our stdout) -- C exits 0 with no output for each
XVM_ROWS = [
    (b"timeout=4294967297\n", b"Invalid timeout: '4294967297'\n"),  # C: 1 second
    (b"ipport=4294968525\n", b"Invalid port: '4294968525'\n"),  # C: port 1229
    (b"retrans=4294967316\n", b"Invalid retransmit time: '4294967316'\n"),  # C: 2 s
    (b"delay=4294967296\n", b"Invalid delay: '4294967296'\n"),  # C: no delay
    (b"ip_family=ipv4\nmulticast_address=ff05::3:1\n",
     b"Invalid multicast address: 'ff05::3:1'\n"),  # C: sends to 0.0.0.0
    (b"ip_family=ipv6\nmulticast_address=225.0.0.12\n",
     b"Invalid multicast address: '225.0.0.12'\n"),  # C: sends to ::
]  # fmt: skip
VIRT_ROWS = [
    (b"ipaddr=127.0.0.1\ntimeout=4294967297\n", b"Invalid timeout: '4294967297'\n"),
    (b"ipaddr=127.0.0.1\nipport=4294968525\n", b"Invalid port: '4294968525'\n"),
    (b"ipaddr=host.example\n",
     b"Invalid IP address: 'host.example' (an IPv4 or IPv6 address, not a name)\n"),
]  # fmt: skip


def validate(extra: bytes) -> bytes:
    return b"action=validate-all\nport=vm1\nkey_file=" + KEY.encode() + b"\n" + extra


@pytest.mark.parametrize(("extra", "message"), XVM_ROWS, ids=lambda v: v.decode()[:30])
def test_fence_xvm_validate_all_refuses_what_c_accepts(
    extra: bytes, message: bytes, ours: str, c_fence_xvm: str, run
) -> None:
    theirs = run([c_fence_xvm], stdin=validate(extra))
    mine = run([ours], stdin=validate(extra))
    assert (theirs.stdout, theirs.stderr, theirs.returncode) == (b"", b"", 0)
    assert (mine.stdout, mine.stderr, mine.returncode) == (message, b"", 1)
    # the same line without the stricter option: both valid
    assert run([ours], stdin=validate(b"")).returncode == 0


@pytest.mark.parametrize(("extra", "message"), VIRT_ROWS, ids=lambda v: v.decode()[:30])
def test_fence_virt_validate_all_refuses_what_c_accepts(
    extra: bytes, message: bytes, ours_virt: str, c_fence_virt: str, ns: NetNS
) -> None:
    theirs = run_c_fence_virt(ns, [], validate(extra))
    mine = c_suite.run_in(ns, [ours_virt], validate(extra))
    assert (theirs.stdout, theirs.stderr, theirs.returncode) == (b"", b"", 0)
    assert (mine.stdout, mine.stderr, mine.returncode) == (message, b"", 1)


def test_no_usable_ipv6_source_fails_at_once(ours: str, c_fence_xvm: str, run) -> None:
    """The namespace has only ``::1``, which is never a source. validate-all: both 0. A
    run: ours says why at once, C sends nothing and times out after ``-t``."""
    words = ["-i", "ipv6", "-k", KEY, "-H", "vm1", "-t", "2"]
    for agent in (ours, c_fence_xvm):
        assert run([agent, *words, "-o", "validate-all"]).returncode == 0
    started = time.monotonic()
    mine = run([ours, *words, "-o", "status"])
    mine_took = time.monotonic() - started
    started = time.monotonic()
    theirs = run([c_fence_xvm, *words, "-o", "status"])
    theirs_took = time.monotonic() - started
    assert (mine.stdout, mine.returncode) == (
        b"No IPv6 address on this machine to send the request from\nOperation failed\n",
        1,
    )
    assert mine_took < 1.5
    assert (theirs.stdout, theirs.returncode) == (
        b"Timed out waiting for response\nOperation failed\n",
        1,
    )
    assert theirs_took >= 2


def test_a_target_that_is_not_utf8(ours: str, c_fence_xvm: str, run) -> None:
    """C sends the raw bytes (no libvirt name matches them); we refuse them up front."""
    data = b"action=validate-all\nport=vm\xe9\nkey_file=" + KEY.encode() + b"\n"
    theirs = run([c_fence_xvm], stdin=data)
    mine = run([ours], stdin=data)
    assert (theirs.stdout, theirs.stderr, theirs.returncode) == (b"", b"", 0)
    assert (mine.stdout, mine.stderr, mine.returncode) == (
        b"Invalid domain name: 'vm\xe9' (not UTF-8)\n",
        b"",
        1,
    )
