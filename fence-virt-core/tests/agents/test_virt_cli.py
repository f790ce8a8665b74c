"""Our fence_virt and the C one print the same bytes and exit alike for every argument case.

No case reaches a daemon (help, version, metadata, validate-all, argument errors). Every run,
the C agent's and ours, has an explicit ``-T 127.0.0.1`` (``ipaddr=`` on stdin) and runs
inside a namespace holding only ``lo``: without a target the C agent would connect to
10.0.2.179. Nothing here uses ``-S`` with the C agent (a vsock connect leaves the machine);
the ``-S`` parsing is pinned in-process in ``test_virt_options.py``. The program path in
usage lines and getopt messages, and the addresses C prints in ``-d`` output, are normalised.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fence_virt.agents import text
from fence_virt.agents.virt import OPTSTRING, PROGRAM
from fence_virt_testinfra import c_suite
from fence_virt_testinfra.c_tcp import run_c_fence_virt
from fence_virt_testinfra.netns import NetNS

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

DATA = Path(__file__).resolve().parent.parent / "data" / "agents"
# one path per test process (the key fixture creates it; the same path inside the namespace):
# a fixed name was deleted under a run by another session's fixture on a shared machine
KEY = f"/tmp/fvt-virt-cli-{os.getpid()}.key"
T = ["-T", "127.0.0.1"]


@pytest.fixture(scope="module", autouse=True)
def key() -> object:
    path = c_suite.write_key(Path(KEY))
    yield path
    path.unlink()


def normalized(result: subprocess.CompletedProcess[bytes], program: str) -> tuple[bytes, ...]:
    def clean(data: bytes) -> bytes:
        data = data.replace(program.encode(), b"ARGV0")
        data = re.sub(rb"-- args @ 0x[0-9a-f]+ --", b"-- args --", data)
        return re.sub(rb" into 0x[0-9a-f]+ \(", b" (", data)

    return clean(result.stdout), clean(result.stderr), bytes([result.returncode])


def compare(
    ns: NetNS, ours: str, c_agent: str, argv: list[str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run both agents alike; assert the same output; return ours."""
    theirs = run_c_fence_virt(ns, argv, stdin)
    mine = c_suite.run_in(ns, [ours, *argv], stdin)
    assert normalized(mine, ours) == normalized(theirs, c_agent)
    return mine


ARGV_CASES = [
    [*T, "-h"],
    [*T, "-?"],
    [*T, "-Z"],
    [*T, "--help"],
    [*T, "-o"],
    [*T, "-o", "metadata", "-T"],
    [*T, "-M"],
    [*T, "-M", "3"],
    # fence_xvm's letters are not fence_virt's: help, exit 0
    [*T, "-u", "-o", "validate-all", "-H", "vm1", "-k", KEY],
    [*T, "-r", "10", "-o", "validate-all", "-H", "vm1", "-k", KEY],
    [*T, "-i", "ipv4", "-o", "validate-all", "-H", "vm1", "-k", KEY],
    [*T, "-a", "225.0.0.12", "-o", "validate-all", "-H", "vm1", "-k", KEY],
    [*T, "-o", "bogus"],
    [*T, "-o", "status"],
    [*T, "-o", "validate-all"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY],
    [*T, "-o", "VALIDATE-ALL", "-n", "vm1", "-k", KEY, "-p", "0x4cd", "-t", "0X1E", "-w", "010"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", " 12", "-w", ""],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", "12 "],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", "0"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", "65536"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-t", "-5", "-w", "-1"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-c", "md5", "-C", "SHA512"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-c", "SHA1", "-C", "none"],
    [*T, "-o", "validate-all", "-H", "a", "-n", "b", "-k", KEY],
    [*T, "-o", "validate-all", "-H", "", "-k", KEY],
    [*T, "-o", "validate-all", "-H", "x" * 63, "-k", KEY],
    [*T, "-o", "validate-all", "-H", "x" * 64, "-k", KEY],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", "/nonexistent/key"],
    [*T, "-o", "status", "-H", "vm1", "-k", "/nonexistent/key"],
    # the serial and vmchannel options parse as in C (TCP mode is used: -T is given)
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-D", "/dev/ttyS7", "-P", "9600,7E2"],
    [*T, "-o", "validate-all", "-H", "vm1", "-k", KEY, "-A", "10.0.2.100", "-P", "bogus"],
    ["-T", "::1", "-o", "validate-all", "-H", "vm1", "-k", KEY, "-T", "127.0.0.2"],
    ["x", *T, "-o", "validate-all", "-H", "vm", "-k", KEY, "y"],
    [*T, "-o", "validate-all", "-k", KEY, "--", "-H", "x"],
    ["-d", *T, "-o", "validate-all", "-H", "a", "-k", KEY],
    ["-dddd", *T, "-o", "validate-all", "-Ha", "-k", KEY, "-D", "/dev/ttyS5", "-p", "0"],
    ["-d", *T, "-o", "validate-all", "-H", "a", "-k", KEY, "-c", "none", "-A", "::1"],
    [*T, "-o", "metadata"],
    [*T, "-o", "metadata", "-p", "0"],
    [*T, "-o", "metadata", "-t", "4", "-H", "vm"],
]


@pytest.mark.parametrize("argv", ARGV_CASES, ids=lambda argv: " ".join(argv)[:60])
def test_argv_case_matches_c(argv: list[str], ours_virt: str, c_fence_virt: str, ns: NetNS) -> None:
    compare(ns, ours_virt, c_fence_virt, argv)


IPADDR = b"ipaddr=127.0.0.1\n"
STDIN_CASES = [
    IPADDR + b"action=metadata\n",
    IPADDR + b"action=validate-all\nport=vm1\nkey_file=" + KEY.encode() + b"\n",
    IPADDR + b"action=status\nbogus=1\nport=a\nplug=b\n",
    b"# comment\n  action=validate-all \t \nPORT=vm1\r\nkey_file=" + KEY.encode()
    + b"\nipaddr=127.0.0.1\nagent=x\nself=y\nnodename=z\ndebug\n",
    # fence_xvm's names are unknown to fence_virt; fence_virt's own are taken
    IPADDR + b"action=validate-all\nplug=vm1\nkey_file=" + KEY.encode()
    + b"\nmulticast_address=225.0.0.12\nip_family=ipv4\nretrans=10\nuse_uuid=1\n"
    b"ipport=0x4cd\nserial_device=/dev/ttyS3\nserial_params=9600,8N1\n"
    b"channel_address=10.0.2.5\nhash=sha512\nauth=sha1\ntimeout=5\ndelay=2\ndebug=2\n",
    IPADDR + b"debug=-4\noption=validate-all\ndomain=x\nkey_file=" + KEY.encode() + b"\n",
    IPADDR + b"action=validate-all\nkey_file=" + KEY.encode() + b"\nplug=" + b"v" * 200 + b"\n",
    IPADDR + b"action=validate-all\nkey_file\nport\nplug=vm1\ndebug=1\n"
    b"auth=none\nhash=NONE\n",
    IPADDR + b"action=validate-all\nport=\n",
    IPADDR + b"action=validate-all\nplug=vm1\nipport=0\ntimeout=0\n",
    b"#plug=a\n   \naction=validate-all\nplug=vm\nipaddr=127.0.0.1\nkey_file="
    + KEY.encode(),
]  # fmt: skip


@pytest.mark.parametrize("data", STDIN_CASES, ids=lambda data: data[:40].decode(errors="replace"))
def test_stdin_case_matches_c(data: bytes, ours_virt: str, c_fence_virt: str, ns: NetNS) -> None:
    compare(ns, ours_virt, c_fence_virt, [], data)


#: (stdin, ours, C's): a line of the ``-d`` dump (both exit 0), or stdout, stderr, exit code
STDIN_DIFFERENCES = [
    # issue 21 C7: the whole value after "=" (C cut at the first blank and fenced "db")
    (IPADDR + b"action=validate-all\nport=db primary\ndebug=1\nkey_file=" + KEY.encode(),
     b"  args->domain = db primary\n", b"  args->domain = db\n"),
    (IPADDR + b"action=validate-all\nplug=vm1\nserial_device=/dev/serial port \r\ndebug=1\n"
     b"key_file=" + KEY.encode(),
     b"  args->serial.device = /dev/serial port\n", b"  args->serial.device = /dev/serial\n"),
    (b"ipaddr=127.0.0.1 x\naction=validate-all\nplug=vm1\nkey_file=" + KEY.encode(),
     (b"Invalid IP address: '127.0.0.1 x' (an IPv4 or IPv6 address, not a name)\n", b"", 1),
     (b"", b"", 0)),
    (IPADDR + b"action=validate-all\nplug=vm1\ntimeout=30 s\nkey_file=" + KEY.encode(),
     (b"Invalid timeout: '30 s'\n", b"", 1), (b"", b"", 0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "mine", "c"),
    STDIN_DIFFERENCES,
    ids=["blank in a target", "blank in a device", "word after an address", "word after a "
         "number"],
)  # fmt: skip
def test_stdin_values_are_read_whole_unlike_c(
    data: bytes, mine: object, c: object, ours_virt: str, c_fence_virt: str, ns: NetNS
) -> None:
    """Deliberate differences (issue 21 C7, docs/differences-from-c.md): each line is read
    whole, as fence-agents does; both agents' answers are pinned."""
    runs = (
        (ours_virt, c_suite.run_in(ns, [ours_virt], data), mine),
        (c_fence_virt, run_c_fence_virt(ns, [], data), c),
    )
    for program, done, expected in runs:
        out, err, code = normalized(done, program)
        if isinstance(expected, bytes):
            assert (expected in out, err, code) == (True, b"", b"\0"), (program, out)
        else:
            assert isinstance(expected, tuple)
            assert (out, err, code) == (expected[0], expected[1], bytes([expected[2]])), program


def test_metadata_equals_the_live_c_agent(ours_virt: str, c_fence_virt: str, ns: NetNS) -> None:
    mine = compare(ns, ours_virt, c_fence_virt, [*T, "-o", "metadata"])
    assert mine.returncode == 0
    assert mine.stdout == (DATA / "fence_virt-metadata.xml").read_bytes()


def test_version_first_line_matches_c(ours_virt: str, c_fence_virt: str, ns: NetNS) -> None:
    theirs = run_c_fence_virt(ns, [*T, "-V"])
    mine = c_suite.run_in(ns, [ours_virt, *T, "-V"])
    assert mine.returncode == theirs.returncode == 0
    assert mine.stdout.splitlines()[0] == theirs.stdout.splitlines()[0] == b"fence_virt 1.9.0"
    assert mine.stdout.splitlines()[1].startswith(b"fence-virt-core ")


def test_help_matches_the_stored_c_output() -> None:
    """Without the C suite installed this still pins the help text."""
    assert text.full_help(PROGRAM, OPTSTRING) == (DATA / "fence_virt-help.txt").read_text()


@pytest.mark.parametrize("address", ["bogus", "localhost", "fe80::1%lo", "127.0.0.1:1229"])
def test_we_refuse_an_address_that_is_not_an_ip_literal(
    address: str, ours_virt: str, c_fence_virt: str, ns: NetNS
) -> None:
    """Deliberate difference: C accepts it, tries no connect and prints a stale errno."""
    words = ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-T", address]
    assert run_c_fence_virt(ns, words).returncode == 0
    mine = c_suite.run_in(ns, [ours_virt, *words])
    assert (mine.stdout, mine.returncode) == (
        f"Invalid IP address: '{address}' (an IPv4 or IPv6 address, not a name)\n".encode(),
        1,
    )
    status = ["-o", "status", "-H", "vm1", "-k", KEY, "-T", address]
    theirs = run_c_fence_virt(ns, status)
    assert theirs.stdout.startswith(
        f"Unable to connect to fence_virtd host {address}:1229 ".encode()
    )
    assert theirs.returncode == 1
    mine = c_suite.run_in(ns, [ours_virt, *status])
    assert mine.returncode == 1
    assert mine.stdout.startswith(b"Invalid IP address: ")
    assert b"\nusage: " in mine.stdout


def test_validate_all_reports_an_unreadable_default_key(
    ours_virt: str, c_fence_virt: str, ns: NetNS, without_default_key
) -> None:
    """Deliberate difference (as fence_xvm): C says valid, then fences unauthenticated."""
    words = [*T, "-o", "validate-all", "-H", "vm1"]
    argv = without_default_key([ours_virt, *words])
    assert c_suite.run_in(ns, without_default_key([c_fence_virt, *words])).returncode == 0
    mine = c_suite.run_in(ns, argv)
    assert mine.returncode == 1
    assert mine.stdout.startswith(b"Could not read /etc/cluster/fence_xvm.key: No such file")
    none = [*words, "-C", "none", "-c", "none"]
    assert c_suite.run_in(ns, without_default_key([ours_virt, *none])).returncode == 0
