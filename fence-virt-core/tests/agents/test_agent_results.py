"""Answers no real daemon gives: odd result bytes, silence, cut-off lists, a host without key.

Test double: a small host written with our codec (``FAKE_HOST`` below) stands in for
fence_virtd here, because neither the C daemon nor ours can be made to send these bytes. It
receives the multicast request, checks its signature, connects back, runs the host side of
the challenge/response, then sends exactly the bytes a test asks for. Where the C agent's
behaviour is what we keep, the C client runs against the same double and must agree.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fence_virt.agents import console, runner
from fence_virt.agents.console import LOG_ERR, LOG_NOTICE
from fence_virt.agents.options import AgentArgs
from fence_virt.protocol import HostState, Operation, Response, encode_hostlist
from fence_virt_testinfra import c_suite
from fence_virt_testinfra.netns import NetNS

pytestmark = pytest.mark.netns

FAKE_HOST = r"""
import socket, struct, sys, time
from fence_virt.protocol import AuthExchange, HashType, verify_request
port, key_path, auth, payload, then = sys.argv[1:6]
port = int(port)
key = open(key_path, "rb").read()
# an optional second key answers the challenges: a host that has the request but not the key
auth_key = open(sys.argv[6], "rb").read() if len(sys.argv) > 6 else key
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
udp.bind(("0.0.0.0", port))
mreq = socket.inet_aton("225.0.0.12") + socket.inet_aton("127.0.0.1")
udp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
print("ready", flush=True)
request = verify_request(udp.recv(2048), key, HashType.SHA256)
conn = socket.create_connection(request.connect_back(), timeout=10)
host = AuthExchange.for_host(HashType[auth.upper()], auth_key)
while not host.done:
    out = host.data_to_send()
    if out:
        conn.sendall(out)
    else:
        host.receive_data(conn.recv(host.bytes_needed))
conn.sendall(bytes.fromhex(payload))
if then == "hold":
    time.sleep(5)
conn.close()
print(f"served {request.request} {request.domain}", flush=True)
"""

PORT = 1241


def against_fake_host(
    ns: NetNS,
    client: str,
    key: Path,
    payload: bytes,
    *argv: str,
    then: str = "close",
    auth_key: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one client request against the double; returns the client's result."""
    extra = [] if auth_key is None else [str(auth_key)]
    host = subprocess.Popen(
        ns.argv(
            sys.executable, "-c", FAKE_HOST, str(PORT), str(key), "sha256", payload.hex(), then,
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert host.stdout is not None
        assert host.stdout.readline().strip() == "ready"
        return c_suite.run_in(ns, [client, "-k", str(key), "-p", str(PORT), *argv], timeout=30)
    finally:
        host.kill()
        host.wait()


def both(ns: NetNS, ours: str, c_fence_xvm: str, key: Path, payload: bytes, *argv: str, **kw):
    mine = against_fake_host(ns, ours, key, payload, *argv, **kw)
    theirs = against_fake_host(ns, c_fence_xvm, key, payload, *argv, **kw)
    assert (mine.stdout, mine.stderr, mine.returncode) == (
        theirs.stdout,
        theirs.stderr,
        theirs.returncode,
    )
    return mine


@pytest.mark.c_suite
@pytest.mark.parametrize(
    ("byte", "out", "rc"),
    [
        (3, b"Permission denied\n", 3),
        (4, b"Unknown response (4)\n", 4),
        (127, b"Unknown response (127)\n", 127),
        (200, b"Unknown response (-56)\n", 200),  # a signed char in C
        (255, b"Unknown response (-1)\n", 255),
    ],
)
def test_result_bytes_map_like_c(
    byte: int, out: bytes, rc: int, ns: NetNS, ours: str, c_fence_xvm: str, key: Path
) -> None:
    result = both(ns, ours, c_fence_xvm, key, bytes([byte]), "-o", "off", "-H", "vm1")
    assert (result.stdout, result.returncode) == (out, rc)


@pytest.mark.c_suite
def test_connection_closed_before_the_result_is_a_failure(
    ns: NetNS, ours: str, c_fence_xvm: str, key: Path
) -> None:
    result = both(ns, ours, c_fence_xvm, key, b"", "-o", "off", "-H", "vm1")
    assert (result.stdout, result.returncode) == (b"Operation failed\n", 1)


@pytest.mark.c_suite
def test_no_result_within_the_timeout(ns: NetNS, ours: str, c_fence_xvm: str, key: Path) -> None:
    result = both(ns, ours, c_fence_xvm, key, b"", "-o", "off", "-H", "vm1", "-t", "1", then="hold")
    assert (result.stdout, result.returncode) == (b"Unknown response (-1)\n", 255)


@pytest.mark.c_suite
def test_host_list_with_c_garbage_bytes(ns: NetNS, ours: str, c_fence_xvm: str, key: Path) -> None:
    """Bytes 63, 127 and 129 of a C record are stack garbage; the final byte is never read."""
    states = [
        HostState("x" * 63, "11111111-1111-1111-1111-111111111111", 1),
        HostState("blocked", "22222222-2222-2222-2222-222222222222", 2),
        HostState("pmsuspended", "33333333-3333-3333-3333-333333333333", 7),
    ]
    stream = bytearray(encode_hostlist(states, 0))
    for record in range(len(states)):
        base = 1 + record * 130
        stream[base + 64 - 1] = stream[base + 128 - 1] = 0
        stream[base + 129] = 0xFE
    result = both(ns, ours, c_fence_xvm, key, bytes(stream), "-o", "list")
    assert result.returncode == 0
    assert result.stdout == (
        b"x" * 63 + b" 11111111-1111-1111-1111-111111111111 on\n"
        b"blocked                          22222222-2222-2222-2222-222222222222 off\n"
        b"pmsuspended                      33333333-3333-3333-3333-333333333333 off\n"
    )


def test_host_list_cut_short_is_a_failure(ns: NetNS, ours: str, key: Path) -> None:
    """Deliberate difference: C prints "Bad read!" and still exits 0."""
    full = encode_hostlist([HostState("vm1", "11111111-1111-1111-1111-111111111111", 1)], 0)
    result = against_fake_host(ns, ours, key, full[:100], "-o", "list")
    assert (result.stdout, result.returncode) == (b"Bad read!\nOperation failed\n", 1)


def test_host_list_stalled_is_a_failure(ns: NetNS, ours: str, key: Path) -> None:
    full = encode_hostlist([HostState("vm1", "11111111-1111-1111-1111-111111111111", 1)], 0)
    result = against_fake_host(ns, ours, key, full[:131], "-o", "list", "-t", "1", then="hold")
    assert (
        result.stdout
        == b"vm1                              11111111-1111-1111-1111-111111111111 on\n"
        b"Timed out!\nOperation failed\n"
    )
    assert result.returncode == 1


def test_host_without_the_key_cannot_fake_success(
    ns: NetNS, ours: str, key: Path, tmp_path: Path
) -> None:
    """A host that has the request (a replay, say) but not the key fails our challenge: exit
    1, and the "success" byte it sends is never taken as success (rhbz#720767)."""
    other = c_suite.write_key(tmp_path / "other.key")
    result = against_fake_host(ns, ours, key, b"\x00", "-o", "off", "-H", "vm1", auth_key=other)
    assert result.returncode == 1
    assert result.stdout == b"Invalid response to challenge\nOperation failed\n"


# --- found by scripts/mutation (docs/mutation.md): the result handling in-process ------------
#
# Test double: ``console.log`` is replaced by a recorder, because the syslog lines the agent
# sends cannot be read back in a test (no syslog daemon needs to run, and none is ours).


class SyslogRecorder:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def __call__(self, ident: str, priority: int, text: str) -> None:
        assert ident == "fence_xvm"
        self.lines.append((priority, text))


@pytest.fixture
def syslog(monkeypatch: pytest.MonkeyPatch) -> SyslogRecorder:
    recorder = SyslogRecorder()
    monkeypatch.setattr(console, "log", recorder)
    return recorder


def agent_args(op: Operation, domain: str | None = "vm1", delay: int = 0) -> AgentArgs:
    args = AgentArgs()
    args.op, args.domain, args.delay = op, domain, delay
    return args


REPORTS = [
    (Operation.STATUS, "vm1", Response.SUCCESS, "Status: ON\n", None),
    (Operation.STATUS, "vm1", Response.OFF, "Status: OFF\n", None),
    (Operation.OFF, "vm1", Response.SUCCESS, "", (LOG_NOTICE, 'Domain "vm1" is ON')),
    (Operation.REBOOT, "vm1", Response.OFF, "", (LOG_NOTICE, 'Domain "vm1" is OFF')),
    (Operation.DEVSTATUS, None, Response.SUCCESS, "", None),
    (
        Operation.OFF,
        "vm1",
        Response.FAIL,
        "Operation failed\n",
        (LOG_ERR, 'Fence operation failed for domain "vm1"'),
    ),
    (
        Operation.DEVSTATUS,
        None,
        Response.FAIL,
        "Operation failed\n",
        (LOG_ERR, "Fence operation failed"),
    ),
    (
        Operation.ON,
        "vm1",
        Response.PERM,
        "Permission denied\n",
        (LOG_ERR, 'Permission denied for Fence operation for domain "vm1"'),
    ),
    (
        Operation.HOSTLIST,
        None,
        Response.PERM,
        "Permission denied\n",
        (LOG_ERR, "Permission denied for fence operation"),
    ),
    (
        Operation.OFF,
        "vm1",
        7,
        "Unknown response (7)\n",
        (LOG_ERR, 'Unknown response (7) for domain "vm1"'),
    ),
]


@pytest.mark.parametrize(("op", "domain", "result", "out", "logged"), REPORTS)
def test_each_result_s_message_and_syslog_line(
    capsysbinary: pytest.CaptureFixture[bytes],
    syslog: SyslogRecorder,
    op: Operation,
    domain: str | None,
    result: int,
    out: str,
    logged: tuple[int, str] | None,
) -> None:
    runner.report("fence_xvm", agent_args(op, domain), int(result))  # as send() returns it
    assert capsysbinary.readouterr().out.decode() == out
    assert syslog.lines == ([] if logged is None else [logged])


def fake_agent(key: bytes | None, result: int, sent: list[float]) -> runner.Agent:
    """An agent whose transport answers ``result`` at once (recording when it was asked)."""
    return runner.Agent(
        "fence_xvm",
        "",
        0,
        check=lambda args: None,
        prepare=lambda args: key,
        send=lambda args, key: sent.append(time.monotonic()) or result,
    )


@pytest.mark.parametrize(
    ("result", "status"), [(Response.SUCCESS, 0), (Response.FAIL, 1), (Response.OFF, 2), (-1, 255)]
)
def test_the_exit_status_is_the_result_byte(
    syslog: SyslogRecorder, result: int, status: int
) -> None:
    sent: list[float] = []
    assert runner._fence(fake_agent(b"key", result, sent), agent_args(Operation.OFF)) == status
    assert len(sent) == 1


def test_no_key_is_exit_1_and_nothing_sent() -> None:
    sent: list[float] = []
    agent = fake_agent(None, Response.SUCCESS, sent)
    assert runner._fence(agent, agent_args(Operation.OFF)) == 1
    assert sent == []


@pytest.mark.parametrize(
    ("op", "delay", "waits"),
    [
        (Operation.OFF, 1, True),
        (Operation.REBOOT, 1, True),
        (Operation.ON, 1, True),
        (Operation.NULL, 1, True),
        (Operation.STATUS, 1, False),
        (Operation.HOSTLIST, 1, False),
        (Operation.OFF, 0, False),
    ],
)
def test_the_delay_comes_before_fencing_operations_only(
    syslog: SyslogRecorder, op: Operation, delay: int, waits: bool
) -> None:
    sent: list[float] = []
    started = time.monotonic()
    runner._fence(fake_agent(b"key", Response.SUCCESS, sent), agent_args(op, delay=delay))
    assert (sent[0] - started >= 1) is waits
