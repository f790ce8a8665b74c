"""Our fence_xvm and the C one print the same bytes and exit alike for every argument case.

No case reaches the network (help, version, metadata, validate-all, argument errors), but
both agents still run inside a namespace holding only ``lo``. The program path in usage
lines and getopt messages, and the address in C's ``-d`` dump header, are normalised.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fence_virt.agents import text
from fence_virt.agents.xvm import OPTSTRING
from fence_virt_testinfra import c_suite

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

DATA = Path(__file__).resolve().parent.parent / "data" / "agents"
# one path per test process (the key fixture creates it; the same path inside the namespace):
# a fixed name was deleted under a run by another session's fixture on a shared machine
KEY = f"/tmp/fvt-agent-cli-{os.getpid()}.key"


@pytest.fixture(scope="module", autouse=True)
def key() -> object:
    path = c_suite.write_key(Path(KEY))
    yield path
    path.unlink()


def normalized(result: subprocess.CompletedProcess[bytes], program: str) -> tuple[bytes, ...]:
    def clean(data: bytes) -> bytes:
        data = data.replace(program.encode(), b"ARGV0")
        return re.sub(rb"-- args @ 0x[0-9a-f]+ --", b"-- args --", data)

    return clean(result.stdout), clean(result.stderr), bytes([result.returncode])


ARGV_CASES = [
    ["-h"],
    ["-?"],
    ["-Z"],
    ["--help"],
    ["-o"],
    ["-M"],
    ["-M", "3"],
    ["-o", "bogus"],
    ["-o", "status"],
    ["-o", "validate-all"],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY],
    ["-o", "VALIDATE-ALL", "-n", "vm1", "-k", KEY, "-p", "0x4cd", "-r", "010", "-t", "0X1E"],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", " 12", "-w", ""],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", "12 "],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", "08"],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-p", "0"],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-t", "-5", "-r", "0", "-w", "-1"],
    ["-o", "validate-all", "-H", "vm1", "-k", KEY, "-c", "md5", "-C", "SHA512", "-i", "ipv5"],
    ["-o", "validate-all", "-H", "a", "-n", "b", "-k", KEY],
    ["-o", "validate-all", "-H", "", "-k", KEY],
    ["-o", "validate-all", "-H", "x" * 63, "-k", KEY],
    ["-o", "validate-all", "-H", "x" * 64, "-k", KEY],
    ["-o", "validate-all", "-H", "vm1", "-k", "/nonexistent/key"],
    ["-o", "status", "-H", "vm1", "-k", "/nonexistent/key"],
    ["-o", "status", "-H", "vm1", "-a", "group"],
    ["x", "-o", "validate-all", "-H", "vm", "-k", KEY, "y"],
    ["-o", "validate-all", "-k", KEY, "--", "-H", "x"],
    ["-d", "-o", "validate-all", "-H", "a", "-k", KEY],
    ["-dddd", "-uo", "validate-all", "-Ha", "-k", KEY, "-a", "ff05::3:1", "-p", "0"],
    ["-d", "-o", "validate-all", "-H", "a", "-k", KEY, "-i", "ipv6", "-c", "none", "-C", "sha1"],
    ["-o", "metadata"],
    ["-o", "metadata", "-p", "0"],
    ["-o", "metadata", "-t", "4", "-H", "vm"],
]


@pytest.mark.parametrize("argv", ARGV_CASES, ids=lambda argv: " ".join(argv)[:60])
def test_argv_case_matches_c(argv: list[str], ours: str, c_fence_xvm: str, run) -> None:
    mine = run([ours, *argv])
    theirs = run([c_fence_xvm, *argv])
    assert normalized(mine, ours) == normalized(theirs, c_fence_xvm)


STDIN_CASES = [
    b"",
    b"action=metadata\n",
    b"action=validate-all\nport=vm1\nkey_file=" + KEY.encode() + b"\n",
    b"action=status\nbogus=1\nport=a\nplug=b\n",
    b"# comment\n  action=validate-all \t \nPORT=vm1\r\nkey_file=" + KEY.encode()
    + b"\nipaddr=1.2.3.4\nagent=x\nself=y\nnodename=z\ndebug\n",
    b"debug=-4\noption=validate-all\ndomain=x\nkey_file=" + KEY.encode() + b"\n",
    b"action=validate-all\nkey_file=" + KEY.encode() + b"\nplug=" + b"v" * 200 + b"\n",
    b"action=validate-all\nkey_file\nport\nplug=vm1\nuse_uuid=1\ndebug=1\n"
    b"auth=none\nhash=NONE\n",
    b"action=validate-all\nport=\n",
    b"#plug=a\n   \naction=validate-all\nplug=vm\nkey_file=" + KEY.encode(),
]  # fmt: skip


@pytest.mark.parametrize("data", STDIN_CASES, ids=lambda data: data[:40].decode(errors="replace"))
def test_stdin_case_matches_c(data: bytes, ours: str, c_fence_xvm: str, run) -> None:
    mine = run([ours], stdin=data)
    theirs = run([c_fence_xvm], stdin=data)
    assert normalized(mine, ours) == normalized(theirs, c_fence_xvm)


#: (stdin, ours, C's): stdout, stderr, exit code; USAGE is the stdin-mode usage text
STDIN_DIFFERENCES = [
    # issue 21 C7: the whole value after "=" (C cut at the first blank and fenced "db")
    (b"action=validate-all\nport=db primary\ndebug=1\nkey_file=" + KEY.encode() + b"\n",
     b"  args->domain = db primary\n", b"  args->domain = db\n"),
    (b"  action=validate-all   trailing\nport=vm1\nkey_file=" + KEY.encode() + b"\n",
     (b"Unsupported operation: validate-all   trailing\nUSAGE", b"", 1), (b"", b"", 0)),
    # a long line is one line (C read its tail after 255 bytes as a line of its own)
    (b"action=validate-all\nkey_file=" + KEY.encode() + b"\nplug=" + b"v" * 300 + b"\n",
     (b"Invalid domain name: '" + b"v" * 300 + b"' (File name too long)\n", b"", 1),
     (b"Invalid domain name: '" + b"v" * 250 + b"' (File name too long)\n",
      b"Parse error: Ignoring unknown option '" + b"v" * 50 + b"'\n", 1)),
    # blanks around "=": fence-agents' unknown name, C's bare name
    (b"action=validate-all\nkey_file = /nonexistent\nplug=vm1\nkey_file=" + KEY.encode(),
     (b"", b"Parse error: Ignoring unknown option 'key_file '\n", 0), (b"", b"", 0)),
    # a NUL byte: C's string ended there
    (b"action=validate-all\nplug=db\0x\nkey_file=" + KEY.encode() + b"\n",
     (b"Invalid value for plug: 'db\\0x' (contains a NUL byte)\nNo domain specified!\n", b"",
      1), (b"", b"", 0)),
    (b"\0junk\naction=validate-all\nplug=vm\nkey_file=" + KEY.encode(),
     (b"", b"Parse error: Ignoring unknown option '\\0junk'\n", 0),
     (b"", b"Parse error: Ignoring unknown option ''\n", 0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "mine", "c"),
    STDIN_DIFFERENCES,
    ids=["blank in a target", "word after a value", "long line", "blanks around =", "NUL in a "
         "value", "NUL in a name"],
)  # fmt: skip
def test_stdin_values_are_read_whole_unlike_c(
    data: bytes, mine: object, c: object, ours: str, c_fence_xvm: str, run
) -> None:
    """Deliberate differences (issue 21 C7, docs/differences-from-c.md): each line is read
    whole, as fence-agents does; both agents' answers are pinned. A bytes expectation is a
    line of the ``-d`` dump (both exit 0); a tuple is the whole outcome."""
    usage = text.usage("ARGV0", OPTSTRING, stdin_names=True).encode()
    for program, expected in ((ours, mine), (c_fence_xvm, c)):
        out, err, code = normalized(run([program], stdin=data), program)
        if isinstance(expected, bytes):
            assert (expected in out, err, code) == (True, b"", b"\0"), (program, out)
        else:
            assert isinstance(expected, tuple)
            want = (expected[0].replace(b"USAGE", usage), expected[1], bytes([expected[2]]))
            assert (out, err, code) == want, program


def test_version_first_line_matches_c(ours: str, c_fence_xvm: str, run) -> None:
    mine = run([ours, "-V"])
    theirs = run([c_fence_xvm, "-V"])
    assert mine.returncode == theirs.returncode == 0
    assert mine.stdout.splitlines()[0] == theirs.stdout.splitlines()[0] == b"fence_xvm 1.9.0"
    assert mine.stdout.splitlines()[1].startswith(b"fence-virt-core ")


def test_help_matches_the_stored_c_output() -> None:
    """Without the C suite installed this still pins the help text."""
    stored = (DATA / "fence_xvm-help.txt").read_text()
    assert text.full_help("fence_xvm", OPTSTRING) == stored


def test_shared_table_reproduces_c_fence_virt_help() -> None:
    """The table also carries fence_virt's options, for the fence_virt agent to reuse."""
    stored = (DATA / "fence_virt-help.txt").read_text()
    assert text.full_help("fence_virt", "dD:P:A:p:M:n:H:o:t:?hVT:S::C:c:k:w:") == stored


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-t", "4294967326"], b"Invalid timeout: '4294967326'\n"),
        (["-i", "ipv4", "-a", "ff05::3:1"], b"Invalid multicast address: 'ff05::3:1'\n"),
        # issue 21 D12: C accepts it here, then cannot join it and times out
        (
            ["-a", "127.0.0.1"],
            b"Invalid multicast address: '127.0.0.1' is not a multicast group (224.0.0.0/4)\n",
        ),
        (
            ["-a", "240.0.0.1"],
            b"Invalid multicast address: '240.0.0.1' is not a multicast group (224.0.0.0/4)\n",
        ),
        (
            ["-i", "ipv6", "-a", "2001:db8::1"],
            b"Invalid multicast address: '2001:db8::1' is not a multicast group (ff00::/8)\n",
        ),
    ],
)
def test_we_refuse_what_c_silently_mangles(
    argv: list[str], message: bytes, ours: str, c_fence_xvm: str, run
) -> None:
    """Deliberate differences: C truncates the number / sends to 0.0.0.0; we stop early."""
    words = ["-o", "validate-all", "-H", "vm1", "-k", KEY, *argv]
    assert run([c_fence_xvm, *words]).returncode == 0
    mine = run([ours, *words])
    assert mine.returncode == 1
    assert mine.stdout == message


def test_validate_all_reports_an_unreadable_default_key(
    ours: str, c_fence_xvm: str, run, without_default_key
) -> None:
    """Deliberate difference: C says valid, then fences unauthenticated (and times out)."""
    words = ["-o", "validate-all", "-H", "vm1"]
    assert run(without_default_key([c_fence_xvm, *words])).returncode == 0
    mine = run(without_default_key([ours, *words]))
    assert mine.returncode == 1
    assert mine.stdout.startswith(b"Could not read /etc/cluster/fence_xvm.key: No such file")
    assert run(without_default_key([ours, *words, "-C", "none", "-c", "none"])).returncode == 0
