"""fence_virt's serial transports in-process: ``-D`` on a real PTY, ``-A`` over real TCP on
127.0.0.1, against core's host-side serial framing.

The host here (:mod:`fence_virt_testinfra.lines`, on threads reading the PTY's master side
or the accepted connection) is the listener toolkit's serial side (:class:`fence_virt.
listening.SerialRequestReader` and :func:`~fence_virt.listening.answer_serial`) in front of
the plugin kit's :class:`~fence_virt.testing.RecordingDispatcher` (a test double for the
backend: it answers what a test says and records the calls) -- or a scripted host that
writes what a test says (noise, half an answer, nothing). The agent runs whole, through
:func:`fence_virt.agents.runner.run`. Every PTY is made here (``os.openpty``): no agent ever
opens a real serial device.

The one test double besides the dispatcher: the modem-line ioctls of a real UART (a PTY has
none; nothing here may open a real serial port), in the hang-up test.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.agents import device, line, runner, virt
from fence_virt.agents.options import AgentArgs
from fence_virt.protocol import (
    SERIAL_MAGIC,
    HostState,
    Operation,
    Response,
    SerialRequest,
    SerialResponse,
)
from fence_virt.protocol.hostlist import HOSTLIST_TERMINATOR
from fence_virt.testing import RecordingDispatcher
from fence_virt_testinfra.lines import (
    HANG_UP,
    LineHost,
    Pty,
    Reply,
    pty_host,
    tcp_host,
    toolkit_reply,
)

UUID1 = "11111111-1111-1111-1111-111111111111"
FENCE_VIRT = str(Path(sys.executable).parent / "fence_virt")


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def host(dispatcher: RecordingDispatcher) -> Iterator[LineHost]:
    """A host answering through the toolkit as the guest ``UUID1``."""
    serving = LineHost(toolkit_reply(dispatcher, UUID1))
    yield serving
    serving.stop()


@pytest.fixture
def pty() -> Iterator[Pty]:
    made = Pty()
    yield made
    made.close()


def run_agent(*argv: str) -> int:
    return runner.run(virt.AGENT, ["fence_virt", *argv])


@pytest.fixture(params=["device", "channel"])
def line_to(
    request: pytest.FixtureRequest, dispatcher: RecordingDispatcher
) -> Iterator[tuple[LineHost, list[str]]]:
    """A toolkit host and the agent's options for it: ``-D`` on a PTY, or ``-A -p``."""
    with scripted(toolkit_reply(dispatcher, UUID1), request.param) as made:
        yield made


@contextlib.contextmanager
def scripted(
    reply: Reply, kind: str, *, hang_up_after: float | None = None
) -> Iterator[tuple[LineHost, list[str]]]:
    """A scripted host on a fresh PTY or TCP port: (the host, the target options)."""
    if kind == "device":
        with pty_host(reply, hang_up_after=hang_up_after) as (host, tty):
            yield host, ["-D", str(tty)]
    else:
        with tcp_host(reply, hang_up_after=hang_up_after) as (host, port):
            yield host, ["-A", "127.0.0.1", "-p", str(port)]


LIST = (
    b"vm1                              11111111-1111-1111-1111-111111111111 on\n"
    b"vm2                              22222222-2222-2222-2222-222222222222 off\n"
)


@pytest.mark.parametrize(
    ("words", "answer", "status", "out", "operation"),
    [
        (["-o", "status", "-H", "vm1"], Response.SUCCESS, 0, b"Status: ON\n", Operation.STATUS),
        (["-o", "status", "-n", UUID1], Response.OFF, 2, b"Status: OFF\n", Operation.STATUS),
        (["-o", "off", "-H", "vm1"], Response.SUCCESS, 0, b"", Operation.OFF),
        (["-o", "on", "-H", "vm1"], Response.SUCCESS, 0, b"", Operation.ON),
        (["-H", "vm1"], Response.SUCCESS, 0, b"", Operation.REBOOT),
        (["-o", "reboot", "-H", "vm1"], Response.FAIL, 1, b"Operation failed\n", Operation.REBOOT),
        (["-o", "off", "-H", "vm2"], Response.PERM, 3, b"Permission denied\n", Operation.OFF),
        (["-o", "monitor"], Response.SUCCESS, 0, b"", Operation.DEVSTATUS),
        (["-o", "null", "-H", "vm1"], Response.FAIL, 1, b"Operation failed\n", Operation.NULL),
    ],
    ids=["status", "status uuid", "off", "on", "reboot default", "failed", "denied", "monitor",
         "null"],
)  # fmt: skip
def test_every_operation(
    words: list[str],
    answer: Response,
    status: int,
    out: bytes,
    operation: Operation,
    line_to: tuple[LineHost, list[str]],
    dispatcher: RecordingDispatcher,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    host, target = line_to
    dispatcher.response = answer
    assert run_agent(*target, *words, "-t", "5") == status
    assert capsysbinary.readouterr() == (out, b"")
    (request,) = host.requests
    domain = words[words.index("-H") + 1] if "-H" in words else ""
    domain = words[words.index("-n") + 1] if "-n" in words else domain
    # C's serial_req_t: magic, the operation, flags 0, the domain, seqno = tv_usec
    assert (request.magic, request.request, request.flags, request.domain) == (
        SERIAL_MAGIC,
        operation,
        0,
        domain,
    )
    assert 0 <= request.seqno < 1_000_000
    if operation == Operation.DEVSTATUS:
        return
    ((called, fenced),) = dispatcher.fenced
    assert (called, fenced.domain, fenced.requester, fenced.by_uuid) == (
        operation,
        domain,
        UUID1,
        False,
    )


@pytest.mark.parametrize("operation", ["list", "list-status"])
def test_list(
    operation: str,
    line_to: tuple[LineHost, list[str]],
    dispatcher: RecordingDispatcher,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert run_agent(*line_to[1], "-o", operation) == 0
    assert capsysbinary.readouterr() == (LIST, b"")
    assert dispatcher.calls == [("hostlist", UUID1)]


def record(name: str, uuid: str, state: int) -> bytes:
    return HostState(name, uuid, state).encode()


HEADER = SerialResponse(Response.HOSTLIST).encode()
ONE_VM = record("vm1", UUID1, 1)


@pytest.mark.parametrize("kind", ["device", "channel"])
@pytest.mark.parametrize(
    ("words", "reply", "status", "out"),
    [
        # C's serial response is unsigned: 200 stays 200 (TCP's signed char would say -56)
        (["-o", "off"], lambda _r: SerialResponse(200).encode(), 200,
         b"Unknown response (200)\n"),
        (["-o", "status"], lambda _r: b"console noise\r\n" + SerialResponse(2).encode(), 2,
         b"Status: OFF\n"),
        (["-o", "status"], lambda _r: SERIAL_MAGIC[:3], 255, b"Unknown response (-1)\n"),
        (["-o", "status"], lambda _r: HANG_UP, 255, b"Unknown response (-1)\n"),
        # silence: the answer must come within -t
        (["-o", "status", "-t", "1"], lambda _r: None, 255, b"Unknown response (-1)\n"),
        # the list ends at the all-zero record: the trailing serial_resp is never waited for
        (["-o", "list", "-t", "20"], lambda _r: HEADER + ONE_VM + HOSTLIST_TERMINATOR, 0,
         LIST.splitlines(keepends=True)[0]),
        # a status answered with a host list prints it, then the status (as C)
        (["-o", "status"], lambda _r: HEADER + HOSTLIST_TERMINATOR + SerialResponse(0).encode(),
         0, b"Status: ON\n"),
    ],
    ids=["unsigned", "noise first", "half a magic, then silence", "hang-up", "silence",
         "no trailer", "list for status"],
)  # fmt: skip
def test_answers_as_c_reads_them(
    kind: str,
    words: list[str],
    reply: Reply,
    status: int,
    out: bytes,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    with scripted(reply, kind) as (host, target):
        started = time.monotonic()
        assert run_agent(*target, "-H", "vm1", "-t", "2", *words) == status
        assert time.monotonic() - started < 5
    assert capsysbinary.readouterr() == (out, b"")
    assert len(host.requests) == 1


@pytest.mark.parametrize("kind", ["device", "channel"])
@pytest.mark.parametrize(
    ("reply", "hang_up", "status", "out"),
    [
        # deliberate difference: C takes the byte it never read (0, success)
        (lambda _r: SERIAL_MAGIC, True, 255, b"Unknown response (-1)\n"),
        # deliberate difference: C prints the reason, then exits 0
        (lambda _r: HEADER + ONE_VM, False, 1,
         LIST.splitlines(keepends=True)[0] + b"Timed out!\nOperation failed\n"),
    ],
    ids=["magic without a response", "list cut short"],
)  # fmt: skip
def test_an_answer_cut_short_is_no_success(
    kind: str,
    reply: Reply,
    hang_up: bool,
    status: int,
    out: bytes,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    with scripted(reply, kind, hang_up_after=0.3 if hang_up else None) as (_, target):
        assert run_agent(*target, "-o", "list", "-t", "1") == status
    assert capsysbinary.readouterr() == (out, b"")


@pytest.mark.parametrize("kind", ["device", "channel"])
def test_a_list_whose_line_closes_is_a_bad_read(
    kind: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """The host closes its end mid-list (a PTY's guest end then reads EIO, TCP reads EOF)."""
    with scripted(lambda _r: HEADER + ONE_VM, kind, hang_up_after=0.3) as (_, target):
        assert run_agent(*target, "-o", "list", "-t", "20") == 1
    assert capsysbinary.readouterr() == (
        LIST.splitlines(keepends=True)[0] + b"Bad read!\nOperation failed\n",
        b"",
    )


def test_the_line_is_set_raw_from_serial_params_and_flushed(
    pty: Pty,
    host: LineHost,
    dispatcher: RecordingDispatcher,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """C's termios (all zero but speed, CLOCAL, CRTSCTS, CREAD and the DPS bits), read back
    from the PTY; what the line held before the run (a stale answer) is flushed away. (A
    Linux PTY keeps 8 bits and no parity whatever it is told: the character size and parity
    of each ``-P`` are pinned on :func:`~fence_virt.agents.device.line_settings` below.)"""
    os.write(pty.master, SerialResponse(Response.SUCCESS).encode())
    dispatcher.response = Response.OFF
    host.serve(pty.master, close=False)
    assert run_agent("-D", str(pty.path), "-P", "19200,8n2", "-o", "status", "-H", "vm1") == 2
    assert capsysbinary.readouterr() == (b"Status: OFF\n", b"")
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(pty.slave)
    wanted = termios.CLOCAL | termios.CRTSCTS | termios.CREAD | termios.CS8 | termios.CSTOPB
    assert (iflag, oflag, lflag, ispeed, ospeed) == (0, 0, 0, termios.B19200, termios.B19200)
    assert cflag & ~termios.CBAUD == wanted
    assert cc[termios.VMIN] in (0, b"\0")
    assert cc[termios.VTIME] in (0, b"\0")


@pytest.mark.parametrize(
    ("params", "speed", "bits"),
    [
        ("115200,8N1", termios.B115200, termios.CS8),
        ("", termios.B9600, termios.CS8),
        ("9600", termios.B9600, termios.CS8),
        (",", termios.B9600, termios.CS8),
        ("2400,5o2", termios.B2400, termios.CS5 | termios.PARENB | termios.PARODD | termios.CSTOPB),
        ("57600,E62", termios.B57600, termios.CS6 | termios.PARENB | termios.CSTOPB),
        ("38400,N81-and-more", termios.B38400, termios.CS8),
        ("19200,111", termios.B19200, termios.CS8),  # each character may set any field
        ("19200,7o1,x", termios.B19200, termios.CS7 | termios.PARENB | termios.PARODD),
        ("9600," + "x" * 30, termios.B9600, termios.CS8),  # C reads 31 characters: "9600,xx..."
    ],
)
def test_serial_params_as_c_reads_them(params: str, speed: int, bits: int) -> None:
    if params.endswith("x" * 30):
        assert device.line_settings(params) is None  # "9600,xxx": 'x' is no DPS character
        return
    settings = device.line_settings(params)
    assert settings is not None
    assert (settings.speed, settings.cflag) == (speed, bits)


@pytest.mark.parametrize(
    ("params", "out"),
    [
        ("4800,8N1", b""),
        ("115200 ,8N1", b""),
        ("9600,8N", b""),
        ("9600,8X1", b"Fail: X\n"),
        ("9600,9N1", b"Fail: 9\n"),
        ("x" * 31 + "9600", b""),
    ],
)
def test_serial_params_c_refuses(
    params: str, out: bytes, pty: Pty, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Refused before the device is opened: C's lines, then -1 (exit 255); nothing sent."""
    assert run_agent("-D", str(pty.path), "-P", params, "-o", "off", "-H", "vm1") == 255
    assert capsysbinary.readouterr() == (
        out + b"Unknown response (-1)\n",
        b"open_port: Invalid argument\n",
    )
    assert not select.select([pty.master], [], [], 0.1)[0]


def test_a_device_that_does_not_exist(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    missing = tmp_path / "ttyS9"
    assert run_agent("-D", str(missing), "-o", "off", "-H", "vm1") == 255
    assert capsysbinary.readouterr() == (
        b"Unknown response (-1)\n",
        b"open: No such file or directory\nopen_port: No such file or directory\n",
    )


def test_a_file_that_is_no_terminal(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    plain = tmp_path / "not-a-tty"
    plain.write_bytes(b"")
    assert run_agent("-D", str(plain), "-o", "off", "-H", "vm1") == 255
    assert capsysbinary.readouterr() == (
        b"Unknown response (-1)\n",
        b"tcsetattr: Inappropriate ioctl for device\nopen_port: Inappropriate ioctl for device\n",
    )
    assert plain.read_bytes() == b""


def test_a_second_agent_on_a_busy_device_fails_at_once(
    pty: Pty, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """The first agent (a process of its own: POSIX locks are per process) holds the line
    until the host answers; the second one fails at once and sends nothing."""
    first_asked, release = threading.Event(), threading.Event()

    def reply(_request: SerialRequest) -> bytes:
        first_asked.set()
        release.wait(30)
        return SerialResponse(Response.SUCCESS).encode()

    host = LineHost(reply)
    host.serve(pty.master, close=False)
    argv = [FENCE_VIRT, "-D", str(pty.path), "-o", "status", "-H", "vm1", "-t", "30"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert first_asked.wait(30)
        started = time.monotonic()
        assert run_agent("-D", str(pty.path), "-o", "off", "-H", "vm2") == 255
        assert time.monotonic() - started < 1
        assert capsysbinary.readouterr() == (
            b"Unknown response (-1)\n",
            b"Failed to lock serial port: Resource temporarily unavailable\n"
            b"open_port: Resource temporarily unavailable\n",
        )
        release.set()
        assert first.communicate(timeout=30) == (b"Status: ON\n", b"")
        assert first.returncode == 0
    finally:
        release.set()
        if first.poll() is None:
            first.kill()
            first.wait()
        host.stop()
    assert [r.domain for r in host.requests] == ["vm1"]


def test_a_pty_needs_no_hang_up_and_says_nothing(
    pty: Pty, host: LineHost, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Deliberate difference: C prints "ioctl1: Inappropriate ioctl for device" on every
    run over a line without modem control; we go on silently, without the 0.3 s wait."""
    fd = os.open(pty.path, os.O_RDWR | os.O_NOCTTY)
    try:
        started = time.monotonic()
        device.hangup(fd)
        assert time.monotonic() - started < device.HANGUP_DELAY
    finally:
        os.close(fd)
    host.serve(pty.master, close=False)
    assert run_agent("-D", str(pty.path), "-o", "status", "-H", "vm1") == 0
    assert capsysbinary.readouterr() == (b"Status: ON\n", b"")


def test_hang_up_drops_the_modem_lines_for_a_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real UART's modem lines, replaced by a recorder: no test may open a real serial
    port, and a PTY has no modem lines."""
    lines = termios.TIOCM_DTR | termios.TIOCM_RTS | termios.TIOCM_CTS | termios.TIOCM_LE
    calls: list[tuple[str, int, float]] = []
    monkeypatch.setattr(device, "_get_lines", lambda _fd: lines)

    def set_lines(_fd: int, bits: int) -> None:
        calls.append(("set", bits, time.monotonic()))

    monkeypatch.setattr(device, "_set_lines", set_lines)
    device.hangup(99, delay=0.05)
    (_, down, t_down), (_, up, t_up) = calls
    modem = termios.TIOCM_DTR | termios.TIOCM_CTS | termios.TIOCM_RTS
    modem |= termios.TIOCM_DSR | termios.TIOCM_CD
    assert (down, up) == (termios.TIOCM_LE, termios.TIOCM_LE | modem)
    assert t_up - t_down >= 0.05


def test_a_refused_vmchannel_connection(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """C's two lines, with the real reason where C printed a stale "Bad file descriptor"."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert run_agent("-A", "127.0.0.1", "-p", str(port), "-o", "off", "-H", "vm1") == 255
    assert capsysbinary.readouterr() == (
        f"Failed to connect to 127.0.0.1:{port}\nUnknown response (-1)\n".encode(),
        b"vmchannel connect: Connection refused\n",
    )


def test_a_request_that_cannot_be_written(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The line is gone before the request (the host's end of a socketpair closed): C's
    "Failed to send request", then the wait for an answer ends at once (EOF)."""
    ours, theirs = socket.socketpair()
    theirs.close()
    args = AgentArgs()
    args.op, args.domain = Operation.OFF, "vm1"
    assert line.fence_channel(args, connect=lambda _address, _port: ours) == runner.NO_RESULT
    assert capsysbinary.readouterr() == (b"Failed to send request\n", b"")
    assert ours.fileno() == -1  # closed
