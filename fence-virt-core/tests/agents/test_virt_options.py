"""fence_virt's options in-process: ``-S`` parsing, the transport switch, the -T check.

``-S`` is pinned here rather than against the C agent: the C ``fence_virt`` is never started
with ``-S`` (a vsock connect leaves the machine). The expected values follow the C
``assign_cid`` (strtoul base 0, 2 <= CID < 0xFFFFFFFF, no value means 2; c-suite-spec
§4.2). Nothing here sends: the transport (:func:`fence_virt.agents.virt.fence`) is replaced
by a function that fails the test if it is reached.
"""

from __future__ import annotations

import pytest

from fence_virt.agents import keys, options, runner, virt
from fence_virt.agents.argv import getopt
from fence_virt.agents.options import AgentArgs
from fence_virt.protocol import DEFAULT_PORT, Operation


def parse_argv(*words: str) -> AgentArgs:
    return runner.parse(virt.AGENT, ["fence_virt", *words], None)


def parse_stdin(data: bytes) -> AgentArgs:
    return runner.parse(virt.AGENT, ["fence_virt"], data)


@pytest.fixture
def no_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_args: object) -> int:
        raise AssertionError("the transport was reached")

    monkeypatch.setattr(virt, "fence", never)
    monkeypatch.setattr(virt.AGENT, "send", never)


@pytest.mark.parametrize(
    ("words", "cid"),
    [
        (["-S"], 2),
        (["-S3"], 3),
        (["-S0x10"], 16),
        (["-S010"], 8),
        (["-S4294967294"], 0xFFFFFFFE),
        (["-S", "3"], 2),  # an optional argument is attached only; "3" is an operand
        (["-S7", "-S"], 2),
    ],
)
def test_cid_values(words: list[str], cid: int) -> None:
    args = parse_argv(*words)
    assert (args.cid, args.failed) == (cid, False)


@pytest.mark.parametrize("value", ["1", "0", "-1", "4294967295", "99999999999", "3x", "0x"])
def test_bad_cids_print_the_c_message(
    value: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = parse_argv(f"-S{value}")
    assert args.failed
    assert capsysbinary.readouterr() == (f"Invalid CID: '{value}'\n".encode(), b"")


def test_stdin_vsock_name() -> None:
    assert parse_stdin(b"vsock=3\n").cid == 3
    assert parse_stdin(b"vsock\n").cid == 2  # a bare name is C's "no value": CID 2
    assert parse_stdin(b"VSOCK=0x4\nipport=1300\n").cid == 4


def test_fence_virt_takes_its_own_letters_only(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    events = list(getopt(["fence_virt", "-u", "-i", "ipv4", "-T", "::1"], virt.OPTSTRING))
    assert events == [("?", None), ("?", None), ("T", "::1")]
    assert capsysbinary.readouterr().err == (
        b"fence_virt: invalid option -- 'u'\nfence_virt: invalid option -- 'i'\n"
    )


def test_argv_values_land_in_args() -> None:
    args = parse_argv(
        "-T", "::1", "-p", "0x4cd", "-D", "/dev/ttyS3", "-P", "9600,7E1", "-A", "10.0.2.5",
        "-C", "sha1", "-c", "SHA512", "-o", "List", "-t", "7", "-w", "2", "-dd",
    )  # fmt: skip
    assert (args.ipaddr, args.port, args.serial_device, args.serial_params) == (
        "::1",
        1229,
        "/dev/ttyS3",
        "9600,7E1",
    )
    assert (args.channel_address, args.auth, args.hash, args.op) == (
        "10.0.2.5",
        1,
        3,
        Operation.HOSTLIST,
    )
    assert (args.timeout, args.delay, args.debug, args.failed) == (7, 2, 2, False)


def test_defaults_and_mode_before_the_switch() -> None:
    args = parse_argv()
    assert (args.mode, args.ipaddr, args.cid, args.port) == (
        options.MODE_SERIAL,
        None,
        0,
        DEFAULT_PORT,
    )
    assert (args.serial_device, args.channel_address) == (None, "10.0.2.179")


@pytest.mark.parametrize(
    ("words", "mode"),
    [
        ([], options.MODE_SERIAL),
        (["-D", "/dev/ttyS1"], options.MODE_SERIAL),
        (["-A", "127.0.0.1"], options.MODE_SERIAL),
        (["-T", "127.0.0.1"], options.MODE_TCP),
        (["-S"], options.MODE_VSOCK),
        (["-T", "127.0.0.1", "-S3"], options.MODE_VSOCK),  # vsock wins, as in C
        (["-S3", "-T", "::1", "-D", "/dev/ttyS1"], options.MODE_VSOCK),
    ],
)
def test_transport_switch(words: list[str], mode: int) -> None:
    args = parse_argv(*words)
    virt.select_mode(args)
    assert args.mode == mode


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "fe80::1", "::ffff:10.0.0.1"])
def test_ip_literals_pass_the_check(address: str) -> None:
    args = parse_argv("-T", address)
    virt.check_args(args)
    assert not args.failed


def test_an_unused_address_is_not_checked() -> None:
    """-S wins over -T, so C never looks at the address; neither do we."""
    args = parse_argv("-T", "host.example", "-S3")
    virt.check_args(args)
    assert not args.failed


def test_dump_shows_cs_mode_number_before_the_switch(
    capsysbinary: pytest.CaptureFixture[bytes], no_transport: None
) -> None:
    status = runner.run(virt.AGENT, ["fence_virt", "-d", "-T", "::1", "-o", "validate-all"])
    out = capsysbinary.readouterr().out
    assert status == 1  # no domain
    assert b"  args->mode = 2\n" in out
    assert b"  args->net.ipaddr = ::1\n  args->net.cid = 0\n" in out


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[AgentArgs]:
    """The transport replaced by a recorder (nothing is sent): the runs that reached it."""
    runs: list[AgentArgs] = []

    def record(args: AgentArgs, _key: bytes) -> int:
        runs.append(args)
        return 0

    monkeypatch.setattr(virt.AGENT, "send", record)
    return runs


@pytest.mark.parametrize(
    ("argv", "device", "address"),
    [
        (["-o", "status", "-H", "vm1"], None, "10.0.2.179"),
        (["-o", "off", "-H", "vm1", "-A", "::1", "-p", "1300"], None, "::1"),
        (["-o", "list", "-D", "/dev/ttyS1", "-A", "bogus"], "/dev/ttyS1", "bogus"),
    ],
    ids=["default vmchannel", "vmchannel", "serial device"],
)
def test_without_tcp_or_vsock_the_serial_transports_run(
    argv: list[str],
    device: str | None,
    address: str,
    recorded: list[AgentArgs],
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """C's default mode: the serial device with -D, else the vmchannel address (10.0.2.179
    unless -A says otherwise); no key is read. Nothing is sent: the transport is replaced."""
    assert runner.run(virt.AGENT, ["fence_virt", *argv]) == 0
    assert capsysbinary.readouterr().out in (b"", b"Status: ON\n")
    (args,) = recorded
    assert (args.mode, args.serial_device, args.channel_address) == (
        options.MODE_SERIAL,
        device,
        address,
    )


@pytest.mark.parametrize("words", [["-D", "/dev/ttyS1"], ["-A", "::1"], []])
def test_serial_runs_read_no_key(
    words: list[str], recorded: list[AgentArgs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serial requests are not signed: the key file (read for -T and -S) is never read."""

    def never(_args: AgentArgs) -> bytes:
        raise AssertionError("the key file was read")

    monkeypatch.setattr(keys, "load_key", never)
    argv = ["fence_virt", *words, "-o", "off", "-H", "vm1", "-C", "sha512"]
    assert runner.run(virt.AGENT, argv) == 0
    assert len(recorded) == 1


@pytest.mark.parametrize(
    ("words", "ok", "out", "err"),
    [
        (["-D", "/dev/ttyS1"], True, b"", b""),
        (["-D", "/dev/ttyS1", "-P", "9600,7E2"], True, b"", b""),
        (["-D", "/dev/ttyS1", "-P", "4800"], False, b"", b"open_port: Invalid argument\n"),
        (["-D", "/dev/ttyS1", "-P", "9600,8X1"], False, b"Fail: X\n",
         b"open_port: Invalid argument\n"),
        # -P means nothing to a vmchannel, and C never checks it there
        (["-A", "127.0.0.1", "-P", "4800"], True, b"", b""),
        (["-T", "127.0.0.1", "-C", "none", "-c", "none", "-D", "/x", "-P", "x"], True, b"", b""),
    ],
)  # fmt: skip
def test_validate_all_checks_the_serial_params_a_run_would_use(
    words: list[str],
    ok: bool,
    out: bytes,
    err: bytes,
    capsysbinary: pytest.CaptureFixture[bytes],
    no_transport: None,
) -> None:
    """Deliberate difference: C's validate-all says 0, then every run fails on the value.
    Nothing is opened: the device need not exist."""
    argv = ["fence_virt", "-o", "validate-all", "-H", "vm1", *words]
    assert runner.run(virt.AGENT, argv) == (0 if ok else 1)
    assert capsysbinary.readouterr() == (out, err)


@pytest.mark.parametrize(
    ("words", "refused"),
    [
        (["-A", "bogus"], True),
        (["-A", "localhost", "-o", "list"], True),
        (["-A", "fe80::1%lo"], True),
        (["-A", "::1"], False),
        (["-A", "bogus", "-D", "/dev/ttyS1"], False),  # the serial device is used, not -A
        (["-A", "bogus", "-T", "::1"], False),
        (["-A", "bogus", "-S3"], False),
        (["-A", "bogus", "-o", "metadata"], False),  # metadata connects nowhere
    ],
)
def test_a_vmchannel_address_must_be_an_ip_literal(words: list[str], refused: bool) -> None:
    args = parse_argv("-o", "status", "-H", "vm1", *words)
    virt.check_args(args)
    assert args.failed == refused


def test_fence_virt_stdin_values_are_read_whole(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Issue 21 C7 for fence_virt's own names: a device path or address with a blank in it
    is the whole text (C cut it at the blank and used another device or address)."""
    args = parse_stdin(
        b"serial_device=/dev/serial port \r\nserial_params=9600,7E1 \nchannel_address=10.0.2.5 x\n"
        b"ipaddr=::1 x\nport=db primary\n"
    )
    assert (args.serial_device, args.serial_params) == ("/dev/serial port", "9600,7E1")
    assert (args.channel_address, args.ipaddr, args.domain) == ("10.0.2.5 x", "::1 x", "db primary")
    virt.check_args(args)
    assert args.failed
    assert capsysbinary.readouterr().out == (
        b"Invalid IP address: '::1 x' (an IPv4 or IPv6 address, not a name)\n"
    )
    args = parse_stdin(b"vsock=3 x\n")
    assert args.failed
    assert capsysbinary.readouterr().out == b"Invalid CID: '3 x'\n"
