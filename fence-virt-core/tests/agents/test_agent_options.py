"""Option parsing in-process: getopt semantics, stdin syntax, per-option checks (§4.2, §4.3).

The same cases run against the C agent in test_agent_cli.py; here each one also pins the
parsed values.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt import agents
from fence_virt.agents import options, runner, stdin, table
from fence_virt.agents.argv import getopt
from fence_virt.agents.options import AgentArgs
from fence_virt.agents.xvm import AGENT, OPTSTRING
from fence_virt.protocol import (
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
    FENCE_REQ_SIZE,
    HOSTLIST_RECORD_SIZE,
    HashType,
    Operation,
    Response,
    constants,
)
from fence_virt.protocol.constants import HOSTLIST_MARKER


def parse_argv(*words: str) -> AgentArgs:
    return runner.parse(AGENT, ["fence_xvm", *words], None)


def parse_stdin(data: bytes) -> AgentArgs:
    return runner.parse(AGENT, ["fence_xvm"], data)


def test_defaults_are_the_c_defaults_and_the_codec_constants() -> None:
    args = AgentArgs()
    assert (args.op, args.port, args.key_file) == (Operation.REBOOT, DEFAULT_PORT, DEFAULT_KEY_FILE)
    assert (args.hash, args.auth) == (HashType.SHA256, HashType.SHA256)
    assert (args.timeout, args.retrans, args.delay, args.debug) == (30, 20, 0, 0)
    assert (args.mcast_address, args.family) == (None, options.FAMILY_AUTO)
    options.finalize(args)
    assert args.mcast_address == DEFAULT_IPV4_GROUP
    args = parse_argv("-i", "ipv6")
    options.finalize(args)
    assert args.mcast_address == DEFAULT_IPV6_GROUP


def _literals(path: Path) -> Iterator[tuple[str | None, object]]:
    """``(name, value)`` of every constant in a module: a name for module-level assignments."""
    tree = ast.parse(path.read_text(), str(path))
    named: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    named.add(id(node.value))
                    yield target.id, node.value.value
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in named:
            yield None, node.value


def test_agents_take_every_wire_constant_from_the_codec() -> None:
    """No agent module re-declares a port, group, key path, size or code of the protocol."""
    wire = {
        n: v
        for n, v in vars(constants).items()
        if n.isupper() and isinstance(v, int | str | bytes) and not isinstance(v, bool)
    }
    wire_names = set(wire) | {f"OP_{op.name}" for op in Operation}
    wire_names |= {f"RESP_{code.name}" for code in Response} | {f"HASH_{h.name}" for h in HashType}
    # values distinctive enough to mean the protocol wherever they appear
    wire_values = {v for v in wire.values() if isinstance(v, str | bytes)}
    wire_values |= {DEFAULT_PORT, FENCE_REQ_SIZE, HOSTLIST_MARKER, HOSTLIST_RECORD_SIZE}
    found = []
    for path in sorted(Path(agents.__file__).parent.glob("*.py")):
        for name, value in _literals(path):
            bare = name.lstrip("_") if name else None
            if bare in wire_names or value in wire_values:
                found.append(f"{path.name}: {name or 'literal'} = {value!r}")
    assert found == []


def test_getopt_clusters_attached_and_separate_arguments() -> None:
    events = list(getopt(["p", "-dduo", "status", "-Hvm1", "-t", "-5"], OPTSTRING))
    assert events == [
        ("d", None),
        ("d", None),
        ("u", None),
        ("o", "status"),
        ("H", "vm1"),
        ("t", "-5"),
    ]


def test_getopt_skips_operands_and_stops_at_double_dash() -> None:
    events = list(getopt(["p", "x", "-o", "off", "-", "y", "--", "-H", "vm"], OPTSTRING))
    assert events == [("o", "off")]


def test_getopt_posixly_correct_stops_at_first_operand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSIXLY_CORRECT", "1")
    assert list(getopt(["p", "-d", "x", "-o", "off"], OPTSTRING)) == [("d", None)]


def test_getopt_errors_print_glibc_messages_and_yield_help(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    events = list(getopt(["prog", "--foo", "-o"], OPTSTRING))
    assert events == [("?", None), ("?", None), ("o", "o"), ("?", None)]
    assert capsysbinary.readouterr().err == (
        b"prog: invalid option -- '-'\n"
        b"prog: invalid option -- 'f'\n"
        b"prog: option requires an argument -- 'o'\n"
    )


def test_optional_argument_is_attached_only() -> None:
    assert list(getopt(["p", "-S", "3", "-S4"], "S::")) == [("S", None), ("S", "4")]


def test_argv_values_land_in_args(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    args = parse_argv(
        "-i", "IPv6", "-a", "ff05::9", "-p", "0x4cd", "-r", "010", "-C", "SHA1", "-c", "none",
        "-o", "List-Status", "-n", "vm1", "-u", "-t", "7", "-w", "2", "-d",
    )  # fmt: skip
    assert (args.family, args.mcast_address, args.port, args.retrans) == (10, "ff05::9", 1229, 8)
    assert (args.auth, args.hash, args.op, args.domain) == (1, 0, Operation.HOSTLIST, "vm1")
    assert (args.use_uuid, args.timeout, args.delay, args.debug) == (True, 7, 2, 1)
    assert not args.failed
    assert capsysbinary.readouterr() == (b"", b"")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["-p", "0"], b"Invalid port: '0'\n"),
        (["-p", "65536"], b"Invalid port: '65536'\n"),
        (["-p", "12 "], b"Invalid port: '12 '\n"),
        (["-r", "0"], b"Invalid retransmit time: '0'\n"),
        (["-t", "-5"], b"Invalid timeout: '-5'\n"),
        (["-t", "4294967326"], b"Invalid timeout: '4294967326'\n"),
        (["-w", "-1"], b"Invalid delay: '-1'\n"),
        (["-c", "md5"], b"Unsupported hash: md5\n"),
        (["-C", "md5"], b"Unsupported auth type: md5\n"),
        (["-i", "ipv5"], b"Unsupported family: 'ipv5'\n"),
        (["-o", "bogus"], b"Unsupported operation: bogus\n"),
        (["-H", ""], b"Invalid domain name\n"),
        (["-H", "x" * 64], b"Invalid domain name: '" + b"x" * 64 + b"' (File name too long)\n"),
        (["-H", "a", "-n", "b"], b"Domain/UUID may not be specified more than once\n"),
        (
            ["-k", "/nonexistent/key"],
            b"Invalid key file: '/nonexistent/key' (No such file or directory)\n",
        ),
    ],
)
def test_bad_values_print_the_c_message_on_stdout_and_fail(
    words: list[str], message: bytes, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = parse_argv(*words)
    assert args.failed
    assert capsysbinary.readouterr() == (message, b"")


def test_domain_length_counts_bytes() -> None:
    assert not parse_argv("-H", "é" * 31).failed  # 62 bytes
    assert parse_argv("-H", "é" * 32).failed  # 64 bytes


def test_unknown_letter_m_sets_the_error_flag() -> None:
    assert parse_argv("-M", "3").failed


def test_help_and_version_flags() -> None:
    assert parse_argv("-?").flags & options.F_HELP
    assert parse_argv("-h").flags & options.F_HELP
    assert parse_argv("-Z").flags & options.F_HELP  # unknown letter -> help, like C
    assert parse_argv("-V").flags & options.F_VERSION


def test_stdin_syntax(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    data = (
        b"# comment\n"
        b"\n"
        b"   \t\n"
        b"\r\n"
        b"  action=Status \t\n"
        b"nodename=node1\n"
        b"agent=fence_xvm\n"
        b"PLUG=vm1\r\n"
        b"key_file = /x\n"
        b"ipaddr=127.0.0.1\n"
        b"debug\n"
        b"debug=3\n"
        b"use_uuid=0\n"
        b"timeout=0x1e"
    )
    args = parse_stdin(data)
    assert (args.op, args.domain, args.debug, args.timeout) == (Operation.STATUS, "vm1", 3, 30)
    assert not args.use_uuid
    assert not args.failed
    assert args.ipaddr is None  # fence_virt's -T is not an option of fence_xvm
    assert capsysbinary.readouterr() == (
        b"",
        b"Parse error: Ignoring unknown option 'key_file '\n"
        b"Parse error: Ignoring unknown option 'ipaddr'\n",
    )


def test_stdin_key_with_blanks_around_the_equals_sign_is_an_unknown_name(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """As fence-agents: the name is ``key_file `` (C read the bare name ``key_file``)."""
    args = parse_stdin(b"key_file = /nonexistent\n")
    assert args.key_file == DEFAULT_KEY_FILE
    assert not args.failed
    assert capsysbinary.readouterr().err == b"Parse error: Ignoring unknown option 'key_file '\n"


def test_stdin_flags_and_negative_debug() -> None:
    assert parse_stdin(b"use_uuid\n").use_uuid
    assert parse_stdin(b"use_uuid \r\n").use_uuid
    assert parse_stdin(b"use_uuid=2\n").use_uuid
    assert parse_stdin(b"debug=-4\n").debug == 1
    assert parse_stdin(b"debug\ndebug\n").debug == 2


def test_stdin_port_plug_and_domain_are_one_target(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    args = parse_stdin(b"port=a\ndomain=b\n")
    assert args.failed
    assert args.domain == "a"
    assert capsysbinary.readouterr().out == b"Domain/UUID may not be specified more than once\n"


def test_stdin_name_without_value_is_ignored_for_values() -> None:
    args = parse_stdin(b"port\naction\n")
    assert args.domain is None
    assert args.op == Operation.REBOOT


@pytest.mark.parametrize("name", ["port", "plug", "domain", "PORT"])
@pytest.mark.parametrize(
    ("line", "target"),
    [
        (b"=db primary\n", "db primary"),
        (b"=db primary \t\r\n", "db primary"),
        (b"=db  primary", "db primary".replace(" ", "  ")),
        (b"= db", " db"),
        (b"=db=primary\n", "db=primary"),
        (b"=db\tprimary\n", "db\tprimary"),
    ],
)
def test_stdin_target_keeps_the_whole_value(name: str, line: bytes, target: str) -> None:
    """Issue 21 C7: everything after the first ``=``, trailing blanks and CR removed (C cut
    at the first blank: ``port=db primary`` fenced ``db``)."""
    args = parse_stdin(b"action=off\n" + name.encode() + line)
    assert (args.domain, args.op, args.failed) == (target, Operation.OFF, False)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"ipport=1229 x", b"Invalid port: '1229 x'"),
        (b"retrans=20 x", b"Invalid retransmit time: '20 x'"),
        (b"timeout=30 s", b"Invalid timeout: '30 s'"),
        (b"delay=0 s", b"Invalid delay: '0 s'"),
        (b"action=off now", b"Unsupported operation: off now"),
        (b"option=off now", b"Unsupported operation: off now"),
        (b"hash=sha256 x", b"Unsupported hash: sha256 x"),
        (b"auth=sha256 x", b"Unsupported auth type: sha256 x"),
        (b"ip_family=ipv4 x", b"Unsupported family: 'ipv4 x'"),
        (b"key_file=/nonexistent x", b"Invalid key file: '/nonexistent x' (No such file or "
         b"directory)"),
    ],
)  # fmt: skip
def test_every_stdin_name_keeps_its_whole_value(
    line: bytes, message: bytes, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A value with a word after it is that whole text: refused where the option cannot take
    it (C read the part before the blank and went on)."""
    args = parse_stdin(line + b"\n")
    assert args.failed
    assert capsysbinary.readouterr() == (message + b"\n", b"")


def test_free_text_values_keep_their_blanks() -> None:
    """``multicast_address`` takes any text (its family check comes later); ``debug`` and
    ``use_uuid`` read a leading number as C's atoi does."""
    args = parse_stdin(b"multicast_address=225.0.0.12 x\nuse_uuid=0 1\ndebug=2 x\n")
    assert (args.mcast_address, args.use_uuid, args.debug) == ("225.0.0.12 x", False, 2)


def test_stdin_key_file_with_a_blank_is_that_file(tmp_path: Path) -> None:
    key = tmp_path / "fence xvm.key"
    key.write_bytes(b"k" * 32)
    assert parse_stdin(f"key_file={key}\n".encode()).key_file == str(key)
    assert parse_stdin(f"key_file={key} \r\n".encode()).key_file == str(key)


def test_stdin_lines_are_read_whole(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """C split a line after 255 bytes and read the tail as a line of its own."""
    args = parse_stdin(b"plug=" + b"v" * 300 + b"\n")
    assert args.domain == "v" * 300
    assert args.failed  # 300 bytes is too long
    out, err = capsysbinary.readouterr()
    assert out == b"Invalid domain name: '" + b"v" * 300 + b"' (File name too long)\n"
    assert err == b""
    args = parse_stdin(b"#" + b"x" * 300 + b"port=vm1\n")
    assert (args.domain, capsysbinary.readouterr()) == (None, (b"", b""))


def test_stdin_nul_in_a_value_is_refused(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """C's string ended at a NUL (``plug=db\\0x`` fenced ``db``); every name refuses one."""
    args = parse_stdin(b"plug=db\0 primary\n")
    assert (args.domain, args.failed) == (None, True)
    assert capsysbinary.readouterr().out == (
        b"Invalid value for plug: 'db\\0 primary' (contains a NUL byte)\n"
    )
    args = parse_stdin(b"action=off\0\n")
    assert (args.op, args.failed) == (Operation.REBOOT, True)
    assert stdin.parse_line(b"\0plug=vm1\n") == ("\0plug", "vm1")


def test_stdin_names_are_per_agent() -> None:
    assert table.by_name("ipaddr", OPTSTRING) is None
    assert table.by_name("IPADDR", "T:") is not None
    assert table.by_name("option", OPTSTRING) is not None
    assert table.by_name("domain", "") is not None


def test_finalize_picks_group_and_family() -> None:
    cases = {
        (): ("225.0.0.12", 2),
        ("-i", "ipv6"): ("ff05::3:1", 10),
        ("-a", "ff05::3:1"): ("ff05::3:1", 10),
        ("-a", "::ffff:1.2.3.4"): ("::ffff:1.2.3.4", 2),  # '.' wins, as in C
    }
    for words, expected in cases.items():
        args = parse_argv(*words)
        options.finalize(args)
        assert (args.mcast_address, args.family) == expected


def test_finalize_refuses_an_address_without_family(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    args = parse_argv("-a", "group")
    options.finalize(args)
    assert args.failed
    assert capsysbinary.readouterr().out == b"Could not determine address family\n"


def test_domain_that_is_not_utf8_is_refused(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The codec sends UTF-8; C would send the raw bytes. Refuse instead of crashing."""
    args = parse_argv("-H", b"vm\xe9".decode(errors="surrogateescape"))
    assert args.failed
    assert capsysbinary.readouterr().out == b"Invalid domain name: 'vm\xe9' (not UTF-8)\n"


@pytest.mark.parametrize(
    ("words", "group"),
    [
        (["-a", "224.0.0.0"], True),
        (["-a", "239.255.255.255"], True),
        (["-a", "225.0.0.12"], True),
        (["-a", "ff02::1"], True),
        (["-i", "ipv6", "-a", "ff05::3:9"], True),
        (["-a", "223.255.255.255"], False),
        (["-a", "240.0.0.0"], False),
        (["-a", "127.0.0.1"], False),
        (["-a", "198.51.100.1"], False),
        (["-a", "::1"], False),
        (["-a", "fe80::1"], False),
    ],
)
def test_only_a_multicast_group_is_a_multicast_address(
    words: list[str], group: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21 D12: a unicast ``multicast_address`` is refused before anything is sent."""
    args = parse_argv(*words, "-o", "status", "-H", "vm1")
    runner._check(AGENT, args)
    assert args.failed is not group
    assert ("is not a multicast group" in capsys.readouterr().out) is not group


def test_hash_v2_selects_protocol_v2_and_keeps_the_c_hash() -> None:
    """``-c v2`` / ``hash=v2`` (any case) is protocol v2 (docs/protocol-v2.md); a later C
    hash type turns it off again, as a later option wins."""
    assert not parse_argv().protocol_v2
    args = parse_argv("-c", "v2")
    assert (args.protocol_v2, args.hash, args.failed) == (True, HashType.SHA256, False)
    assert parse_stdin(b"hash=V2\n").protocol_v2
    later = parse_argv("-c", "v2", "-c", "sha512")
    assert (later.protocol_v2, later.hash) == (False, HashType.SHA512)
    assert parse_argv("-c", "v3").failed
