"""Our ``fence_virt -D`` / ``-A`` and the C one, row by row: the same bytes on stdout and
stderr and the same exit code for the same arguments, stdin and answers from the host.

Each agent run gets a host of its own that answers by script
(:mod:`fence_virt_testinfra.lines`): for ``-D`` a PTY made here (``os.openpty``; ``TTY`` in
a row), for ``-A`` a TCP listener on 127.0.0.1 inside the module's namespace (``PORT``).
Safety: neither agent ever runs without an explicit ``-D`` naming such a PTY or a path in the
test's own directory (a file that does not exist, a plain file), or ``-A`` naming loopback
or an address of the namespace (a blackhole, an unreachable network); never ``-S``. Both
agents run inside the namespace.

Every row pins our outcome, so rows where both agents fail alike still fail. Where we
deliberately differ, the row pins C's outcome too (``c``): the real reason instead of C's
stale errno, failure instead of C's false success, a refused argument instead of a doomed
run. C prints ``ioctl1: Inappropriate ioctl for device`` on stderr whenever it opened the
PTY (a PTY has no modem lines to hang up); we print nothing there -- pinned on every row
that opens the device.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from fence_virt.agents import text, virt
from fence_virt.protocol import SERIAL_MAGIC, HostState, Response, SerialResponse
from fence_virt.protocol.hostlist import HOSTLIST_TERMINATOR, encode_serial_hostlist
from fence_virt_testinfra import c_suite
from fence_virt_testinfra.c_tcp import blackhole
from fence_virt_testinfra.lines import HANG_UP, LineHost, Pty, Reply, pty_host, tcp_host
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.tools import skip_unless_netns

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

UUID1 = "11111111-1111-1111-1111-111111111111"
IOCTL1 = b"ioctl1: Inappropriate ioctl for device\n"
NO_ANSWER = b"Unknown response (-1)\n"
VM1 = b"vm1" + b" " * 30 + UUID1.encode() + b" on\n"
VM2 = b"vm2" + b" " * 30 + b"22222222-2222-2222-2222-222222222222 off\n"
VMS = (HostState("vm1", UUID1, 1), HostState("vm2", "22222222-2222-2222-2222-222222222222", 5))
HEADER = SerialResponse(Response.HOSTLIST).encode()
#: a port where nothing listens, inside the namespace
CLOSED = 1231


def code(value: int) -> Reply:
    answer = SerialResponse(value).encode()
    return lambda _request: answer


def raw(data: bytes | None) -> Reply:
    return lambda _request: data


ON = code(Response.SUCCESS)


@dataclass(frozen=True)
class Outcome:
    out: bytes
    err: bytes
    rc: int


@dataclass(frozen=True)
class Row:
    """One case: argv and stdin (``TTY``, ``PORT`` and ``MISSING``/``PLAIN`` filled in per
    run), the host's script, our outcome and, where C differs on purpose, C's."""

    name: str
    argv: tuple[str, ...]
    ours: Outcome
    reply: Reply = ON
    stdin: bytes | None = None
    #: "pty" (``TTY``), "tcp" (``PORT``) or "none"
    line: str = "pty"
    #: C's outcome (without its ioctl1 line) when it deliberately differs from ours
    c: Outcome | None = None
    #: C opens the PTY and prints its ioctl1 line
    opens: bool = True
    hang_up_after: float | None = None
    #: the host must have read a request with this (operation, domain)
    asked: tuple[int, str] | None = None
    #: the run takes at least this long (a delay) -- and the agent ran no longer than 10 s
    at_least: float = 0.0


def ok(out: bytes = b"", rc: int = 0, err: bytes = b"") -> Outcome:
    return Outcome(out, err, rc)


def refused(out: bytes = b"", err: bytes = b"open_port: Invalid argument\n") -> Outcome:
    return Outcome(out + NO_ANSWER, err, 255)


T = "TTY"
ROWS = [
    Row("status on", ("-D", T, "-o", "status", "-H", "vm1"), ok(b"Status: ON\n"),
        asked=(4, "vm1")),
    Row("status off", ("-D", T, "-o", "status", "-n", UUID1), ok(b"Status: OFF\n", 2),
        code(Response.OFF), asked=(4, UUID1)),
    Row("off", ("-D", T, "-o", "off", "-H", "vm1"), ok(), asked=(1, "vm1")),
    Row("on", ("-D", T, "-o", "on", "-H", "vm2"), ok(), asked=(3, "vm2")),
    Row("reboot by default", ("-D", T, "-H", "vm1"), ok(), asked=(2, "vm1")),
    Row("failed", ("-D", T, "-o", "reboot", "-H", "vm1"), ok(b"Operation failed\n", 1),
        code(Response.FAIL)),
    Row("denied", ("-D", T, "-o", "off", "-H", "vm9"), ok(b"Permission denied\n", 3),
        code(Response.PERM)),
    Row("unsigned response", ("-D", T, "-o", "off", "-H", "vm1"),
        ok(b"Unknown response (200)\n", 200), code(200)),
    Row("null", ("-D", T, "-o", "null", "-H", "vm1"), ok(b"Operation failed\n", 1),
        code(Response.FAIL), asked=(0, "vm1")),
    Row("monitor", ("-D", T, "-o", "monitor"), ok(), asked=(5, "")),
    Row("list", ("-D", T, "-o", "list"), ok(VM1 + VM2),
        raw(encode_serial_hostlist(VMS, 0)), asked=(6, "")),
    Row("list-status", ("-D", T, "-o", "list-status"), ok(VM1 + VM2),
        raw(encode_serial_hostlist(VMS, 0))),
    Row("list without its trailer", ("-D", T, "-o", "list", "-t", "20"), ok(VM1),
        raw(HEADER + VMS[0].encode() + HOSTLIST_TERMINATOR)),
    Row("noise before the answer", ("-D", T, "-o", "status", "-H", "vm1"),
        ok(b"Status: OFF\n", 2), raw(b"console noise\r\n" + SerialResponse(2).encode())),
    Row("silence", ("-D", T, "-o", "status", "-H", "vm1", "-t", "1"), ok(NO_ANSWER, 255),
        raw(None)),
    Row("hang-up", ("-D", T, "-o", "off", "-H", "vm1"), ok(NO_ANSWER, 255), raw(HANG_UP)),
    # deliberate: C reports the response byte it never read (0: success)
    Row("magic, then hang-up", ("-D", T, "-o", "status", "-H", "vm1"), ok(NO_ANSWER, 255),
        raw(SERIAL_MAGIC), hang_up_after=0.3, c=ok(b"Status: ON\n")),
    # deliberate: C says why, then exits 0
    Row("list cut short", ("-D", T, "-o", "list", "-t", "1"),
        ok(VM1 + b"Timed out!\nOperation failed\n", 1), raw(HEADER + VMS[0].encode()),
        c=ok(VM1 + b"Timed out!\n")),
    Row("delay", ("-D", T, "-w", "1", "-o", "off", "-H", "vm1"), ok(), at_least=1.0),
    Row("delay ignored by status", ("-D", T, "-w", "100", "-o", "status", "-H", "vm1"),
        ok(b"Status: ON\n")),
    Row("params", ("-D", T, "-P", "19200,7E2", "-o", "status", "-H", "vm1"),
        ok(b"Status: ON\n")),
    Row("params speed only", ("-D", T, "-P", "9600", "-o", "status", "-H", "vm1"),
        ok(b"Status: ON\n")),
    Row("params: no speed", ("-D", T, "-P", ",8N1", "-o", "status", "-H", "vm1"),
        ok(b"Status: ON\n")),
    Row("params: bad speed", ("-D", T, "-P", "4800,8N1", "-o", "off", "-H", "vm1"), refused(),
        opens=False),
    Row("params: bad bits", ("-D", T, "-P", "9600,8X1", "-o", "off", "-H", "vm1"),
        refused(b"Fail: X\n"), opens=False),
    Row("params: too short", ("-D", T, "-P", "9600,8N", "-o", "off", "-H", "vm1"), refused(),
        opens=False),
    # deliberate: the second line names the real reason (C: "Invalid argument" always)
    Row("no such device", ("-D", "MISSING", "-o", "off", "-H", "vm1"),
        refused(err=b"open: No such file or directory\nopen_port: No such file or directory\n"),
        line="none", opens=False,
        c=refused(err=b"open: No such file or directory\nopen_port: Invalid argument\n")),
    Row("not a terminal", ("-D", "PLAIN", "-o", "off", "-H", "vm1"),
        refused(err=b"tcsetattr: Inappropriate ioctl for device\n"
                b"open_port: Inappropriate ioctl for device\n"),
        line="none", opens=False,
        c=refused(err=b"tcsetattr: Inappropriate ioctl for device\n"
                  b"open_port: Invalid argument\n")),
    Row("stdin status", (), ok(b"Status: OFF\n", 2), code(Response.OFF),
        stdin=b"serial_device=TTY\naction=status\nport=vm1\nnodename=node1\n", asked=(4, "vm1")),
    Row("stdin params", (), ok(b"Status: ON\n"),
        stdin=b"agent=fence_virt\nserial_device=TTY\nserial_params=57600,8N1\naction=status\n"
              b"plug=vm1\nchannel_address=10.0.2.5\nipport=99\n"),
    Row("stdin unknown names", (), ok(b"", 0, b"Parse error: Ignoring unknown option "
        b"'multicast_address'\nParse error: Ignoring unknown option 'use_uuid'\n"),
        stdin=b"serial_device=TTY\naction=off\nplug=vm1\nmulticast_address=x\nuse_uuid=1\n"),
    Row("debug dump", ("-dd", "-D", T, "-P", "9600,7E1", "-o", "status", "-H", "vm1"),
        ok(b"Status: ON\n")),
    Row("validate-all", ("-D", T, "-o", "validate-all", "-H", "vm1"), ok(), line="none",
        opens=False),
    Row("validate-all, no domain", ("-D", T, "-o", "validate-all"),
        ok(b"No domain specified!\n", 1), line="none", opens=False),
    # deliberate: the -P value every run would fail on
    Row("validate-all, bad params", ("-D", T, "-P", "9600,8X1", "-o", "validate-all", "-H",
        "vm1"), ok(b"Fail: X\n", 1, b"open_port: Invalid argument\n"), line="none",
        opens=False, c=ok()),
    Row("validate-all on stdin, bad params", (), ok(b"", 1, b"open_port: Invalid argument\n"),
        stdin=b"serial_device=TTY\nserial_params=300\naction=validate-all\nport=vm1\n",
        line="none", opens=False, c=ok()),
    Row("metadata", ("-D", T, "-o", "metadata"), ok(b"METADATA"), line="none", opens=False),
    Row("no domain", ("-D", T, "-o", "off"), ok(b"No domain specified!\nUSAGE", 1),
        line="none", opens=False),
    Row("help", ("-D", T, "-h"), ok(b"HELP"), line="none", opens=False),
    # vmchannel
    Row("vmchannel status", ("-A", "127.0.0.1", "-p", "PORT", "-o", "status", "-H", "vm1"),
        ok(b"Status: OFF\n", 2), code(Response.OFF), line="tcp", opens=False,
        asked=(4, "vm1")),
    Row("vmchannel list on stdin", (), ok(VM1 + VM2), raw(encode_serial_hostlist(VMS, 0)),
        stdin=b"channel_address=127.0.0.1\nipport=PORT\naction=list\n", line="tcp",
        opens=False),
    Row("vmchannel silence", ("-A", "127.0.0.1", "-p", "PORT", "-t", "1", "-o", "off", "-H",
        "vm1"), ok(NO_ANSWER, 255), raw(None), line="tcp", opens=False),
    Row("vmchannel hang-up", ("-A", "127.0.0.1", "-p", "PORT", "-o", "off", "-H", "vm1"),
        ok(NO_ANSWER, 255), raw(HANG_UP), line="tcp", opens=False),
    # deliberate: the real reason where C prints a stale "Bad file descriptor"
    Row("vmchannel refused", ("-A", "127.0.0.1", "-p", str(CLOSED), "-o", "off", "-H", "vm1"),
        ok(b"Failed to connect to 127.0.0.1:1231\n" + NO_ANSWER, 255,
           b"vmchannel connect: Connection refused\n"), line="none", opens=False,
        c=ok(b"Failed to connect to 127.0.0.1:1231\n" + NO_ANSWER, 255,
             b"vmchannel connect: Bad file descriptor\n")),
    Row("vmchannel refused ipv6", ("-A", "::1", "-p", str(CLOSED), "-o", "list"),
        ok(b"Failed to connect to ::1:1231\n" + NO_ANSWER, 255,
           b"vmchannel connect: Connection refused\n"), line="none", opens=False,
        c=ok(b"Failed to connect to ::1:1231\n" + NO_ANSWER, 255,
             b"vmchannel connect: Bad file descriptor\n")),
    Row("vmchannel unreachable", ("-A", "192.0.2.9", "-o", "off", "-H", "vm1"),
        ok(b"Failed to connect to 192.0.2.9:1229\n" + NO_ANSWER, 255,
           b"vmchannel connect: Network is unreachable\n"), line="none", opens=False),
    Row("vmchannel connect timeout", ("-A", "198.51.100.50", "-o", "off", "-H", "vm1"),
        ok(b"Failed to connect to 198.51.100.50:1229\n" + NO_ANSWER, 255,
           b"vmchannel connect: Connection timed out\n"), line="none", opens=False,
        at_least=3.0),
    # deliberate: a name is refused up front (C tries nothing and says "Success")
    Row("vmchannel name", ("-A", "localhost", "-o", "off", "-H", "vm1"),
        ok(b"Invalid IP address: 'localhost' (an IPv4 or IPv6 address, not a name)\nUSAGE", 1),
        line="none", opens=False,
        c=ok(b"Failed to connect to localhost:1229\n" + NO_ANSWER, 255,
             b"vmchannel connect: Success\n")),
    Row("vmchannel name, validate-all", ("-A", "bogus", "-o", "validate-all", "-H", "vm1"),
        ok(b"Invalid IP address: 'bogus' (an IPv4 or IPv6 address, not a name)\n", 1),
        line="none", opens=False, c=ok()),
]  # fmt: skip


@pytest.fixture(scope="module")
def space() -> Iterator[NetNS]:
    """``lo`` and a blackhole (198.51.100.50 never answers); no route to 192.0.2.0/24."""
    skip_unless_netns()
    with netns("vser") as namespace:
        blackhole(namespace)
        yield namespace


@pytest.fixture(scope="module")
def texts(ours_virt: str) -> dict[bytes, bytes]:
    """The placeholders ``METADATA``, ``USAGE`` and ``HELP`` (each agent prints its own usage,
    with its own path as argv[0]; normalised to ``ARGV0``)."""
    return {
        b"METADATA": text.metadata(virt.PROGRAM, virt.OPTSTRING).encode(),
        b"USAGE": text.usage("ARGV0", virt.OPTSTRING, stdin_names=False).encode(),
        b"HELP": text.full_help("ARGV0", virt.OPTSTRING).encode(),
    }


def fill(words: tuple[str, ...] | bytes | None, values: dict[str, str]) -> object:
    if words is None:
        return None
    if isinstance(words, bytes):
        for name, value in values.items():
            words = words.replace(name.encode(), value.encode())
        return words
    return [values.get(word, word) for word in words]


def explicit_target(argv: list[str], stdin: bytes | None) -> bool:
    """``-D``/``-A``/``-T`` on the command line, or serial_device/channel_address on stdin;
    never vsock."""
    if argv:
        vsock = any(word.startswith("-") and "S" in word.lstrip("-") for word in argv)
        return not vsock and any(word in ("-D", "-A", "-T") for word in argv)
    data = stdin or b""
    return b"vsock" not in data and (b"serial_device=" in data or b"channel_address=" in data)


def run_row(
    agent: str, row: Row, space: NetNS, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[bytes], LineHost | None, float]:
    values = {"MISSING": str(tmp_path / "ttyS9"), "PLAIN": str(tmp_path / "plain")}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "plain").write_bytes(b"")
    with ExitStack() as stack:
        host: LineHost | None = None
        if row.line == "pty":
            host, tty = stack.enter_context(pty_host(row.reply, hang_up_after=row.hang_up_after))
            values["TTY"] = str(tty)
        elif row.line == "tcp":
            host, port = stack.enter_context(
                tcp_host(row.reply, ns=space, hang_up_after=row.hang_up_after)
            )
            values["PORT"] = str(port)
        else:
            # an argument case: TTY is a PTY made here that nobody serves
            pty = Pty()
            stack.callback(pty.close)
            values["TTY"] = str(pty.path)
        argv = fill(row.argv, values)
        stdin = fill(row.stdin, values)
        assert isinstance(argv, list)
        assert stdin is None or isinstance(stdin, bytes)
        assert explicit_target(argv, stdin), row
        started = time.monotonic()
        done = c_suite.run_in(space, [agent, *argv] if argv else [agent], stdin, timeout=30)
        elapsed = time.monotonic() - started
        normal = normalize(done, agent, values)
    return normal, host, elapsed


def normalize(
    done: subprocess.CompletedProcess[bytes], agent: str, values: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    def clean(data: bytes) -> bytes:
        data = data.replace(agent.encode(), b"ARGV0")
        for name, value in values.items():
            data = data.replace(value.encode(), name.encode())
        return re.sub(rb"-- args @ 0x[0-9a-f]+ --", b"-- args --", data)

    return subprocess.CompletedProcess(
        done.args, done.returncode, clean(done.stdout), clean(done.stderr)
    )


def expand(outcome: Outcome, texts: dict[bytes, bytes]) -> Outcome:
    out = outcome.out
    for name, value in texts.items():
        out = out.replace(name, value)
    return Outcome(out, outcome.err, outcome.rc)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_row(
    row: Row,
    space: NetNS,
    tmp_path: Path,
    ours_virt: str,
    c_fence_virt: str,
    texts: dict[bytes, bytes],
) -> None:
    theirs, their_host, their_time = run_row(c_fence_virt, row, space, tmp_path / "c")
    mine, my_host, my_time = run_row(ours_virt, row, space, tmp_path / "ours")
    expected = expand(row.ours, texts)
    got = Outcome(mine.stdout, mine.stderr, mine.returncode)
    if row.name == "debug dump":
        # the dump itself is compared with C's below; ours ends like a plain status
        assert got.out.endswith(expected.out), got
        got = Outcome(expected.out, got.err, got.rc)
    assert got == expected
    their_err = theirs.stderr
    if row.opens:
        assert IOCTL1 in their_err, theirs
        their_err = their_err.replace(IOCTL1, b"", 1)
    c_got = Outcome(theirs.stdout, their_err, theirs.returncode)
    if row.c is not None:
        assert c_got == expand(row.c, texts)
    else:
        assert c_got == Outcome(mine.stdout, mine.stderr, mine.returncode)
    asked = [
        [(request.request, request.domain, request.flags, request.magic) for request in h.requests]
        for h in (my_host, their_host)
        if h is not None
    ]
    if row.asked is not None:
        assert asked == [[(*row.asked, 0, SERIAL_MAGIC)]] * 2
    if asked and asked[0]:
        assert asked[0] == asked[1]
    assert my_time >= row.at_least
    assert their_time >= row.at_least


@pytest.mark.parametrize("holder", ["c", "ours"])
def test_a_busy_device_fails_the_second_agent_at_once(
    holder: str, space: NetNS, ours_virt: str, c_fence_virt: str
) -> None:
    """The write lock is the same for both (a POSIX lock on the whole device): while one
    agent waits for its answer, the other, ours or C's, fails at once and sends nothing."""
    first, second = (c_fence_virt, ours_virt) if holder == "c" else (ours_virt, c_fence_virt)
    asked, release = threading.Event(), threading.Event()

    def reply(_request: object) -> bytes:
        asked.set()
        release.wait(30)
        return SerialResponse(Response.SUCCESS).encode()

    with pty_host(reply) as (host, tty):
        argv = [first, "-D", str(tty), "-o", "status", "-H", "vm1", "-t", "30"]
        holding = subprocess.Popen(
            space.argv(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert asked.wait(30)
            started = time.monotonic()
            busy = c_suite.run_in(space, [second, "-D", str(tty), "-o", "off", "-H", "vm2"])
            assert time.monotonic() - started < 2
        finally:
            release.set()
            out, err = holding.communicate(timeout=30)
    reason = b"Invalid argument" if second == c_fence_virt else b"Resource temporarily unavailable"
    assert (busy.stdout, busy.stderr, busy.returncode) == (
        NO_ANSWER,
        b"Failed to lock serial port: Resource temporarily unavailable\nopen_port: "
        + reason
        + b"\n",
        255,
    )
    expected_err = IOCTL1 if first == c_fence_virt else b""
    assert (out, err, holding.returncode) == (b"Status: ON\n", expected_err, 0)
    assert [request.domain for request in host.requests] == ["vm1"]
