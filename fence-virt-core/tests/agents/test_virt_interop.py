"""The interop table: our ``fence_virt -T`` and the C one against fence_virtd's tcp listener.

Each row runs the C client and ours, each against a freshly started daemon (tcp listener on
127.0.0.1 or ::1, libvirt backend on a test-driver node with a running, a shut-off and a
paused VM), so both see the same starting state, and compares stdout, stderr and exit code.
Every row also pins the expected outcome, so a table where both clients fail alike still
fails. Where C prints a misleading reason (a stale errno) and we print the real one, the row
pins both texts (``c_out``).

The daemon is a parameter: the C fence_virtd (module tcp.so, as in the reference recipes),
and ours when the ``fence-virt-listener-tcp`` distribution is installed (skipped otherwise).
Everything runs in one namespace per module holding ``lo`` and a dummy interface that drops
every packet (for the connect timeout); both clients always get ``-T``, never ``-S``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from fence_virt_testinfra import c_suite
from fence_virt_testinfra.c_tcp import TcpSetup, blackhole, c_fence_virtd_tcp
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.ours import running_fence_virtd
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.tools import skip_unless_netns, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

DaemonFactory = Callable[[NetNS, Path, TcpSetup], AbstractContextManager[Daemon]]

PORT = 1229
CLOSED_PORT = 1231
ON = b"Status: ON\n"
OFF = b"Status: OFF\n"
FAILED = b"Operation failed\n"
DENIED = b"Permission denied\n"
REFUSED = b"Invalid response to challenge\n" + FAILED
UUID1 = "11111111-1111-1111-1111-111111111111"
UUID2 = "22222222-2222-2222-2222-222222222222"


def listing(*rows: tuple[str, str, str]) -> bytes:
    return b"".join(f"{name:<32} {uuid} {state}\n".encode() for name, uuid, state in rows)


VM1 = ("vm1", UUID1, "on")
VM2 = ("vm2", UUID2, "off")
VM3 = ("vm3-with-a-long-name-0123456789", "33333333-3333-3333-3333-333333333333", "off")
ALL = listing(VM1, VM2, VM3)


@dataclass(frozen=True)
class Row:
    """One line of the table: client arguments (``-T``, ``-p``, ``-k`` added), daemon
    settings, outcome."""

    name: str
    argv: tuple[str, ...]
    out: bytes
    rc: int
    stdin: bytes | None = None
    daemon: dict[str, object] = field(default_factory=dict)
    #: the address and port the clients connect to
    target: str = "127.0.0.1"
    port: int = PORT
    #: the client signs with a key the daemon does not have
    wrong_key: bool = False
    #: the daemon is stopped (SIGSTOP) once it listens: connections queue, nothing answers
    stopped: bool = False
    #: what C prints instead of ``out`` (a stale errno), when we print the real reason
    c_out: bytes | None = None
    #: C prints random hex dumps before ``out`` (challenge mismatch)
    c_hash_dump: bool = False
    #: output starts with a read error whose errno depends on timing: compare the ending
    racy_prefix: bool = False
    #: (out, rc) where our daemon deliberately answers otherwise than the C one
    with_our_daemon: tuple[bytes, int] | None = None
    #: the row shows a quirk of the C daemon only (run against the C daemon alone)
    c_daemon_only: bool = False


SHA1_DAEMON = {"hash": "sha1", "auth": "sha1"}
DENY_ALL = {"groups": [("others", ["198.51.100.99"], ["vm1"])]}
ALLOW_VM1 = {"groups": [("guests", ["127.0.0.1"], ["vm1"])]}
DEBUG3 = (
    b"Reading in key file KEY (4096 max size)\nActual key length = 4096 bytes\n"
    b"Issuing TCP challenge\nResponding to TCP challenge\n"
    b"TCP Exchange + Authentication done... \nWaiting for return value from fence_virtd host\n"
)
NO_AUTH_TRACES = (
    b"sign_request: no-op (HASH_NONE)\nIssuing TCP challenge\n"
    b"sock_challenge: no-op (AUTH_NONE)\nResponding to TCP challenge\n"
    b"sock_response: no-op (AUTH_NONE)\nTCP Exchange + Authentication done... \n"
    b"Waiting for return value from fence_virtd host\n"
)

ROWS = [
    Row("list", ("-o", "list"), ALL, 0),
    Row("list-status", ("-o", "list-status"), ALL, 0),
    Row("monitor", ("-o", "monitor"), b"", 0),
    Row("status running", ("-o", "status", "-H", "vm1"), ON, 0),
    Row("status shut off", ("-o", "status", "-n", "vm2"), OFF, 2),
    Row("status paused", ("-o", "status", "-H", VM3[0]), ON, 0),
    # the C libvirt backend calls an unknown VM off; ours says it cannot tell (failure)
    Row("status unknown vm", ("-o", "status", "-H", "nosuch"), OFF, 2, with_our_daemon=(FAILED, 1)),
    # fence_virt has no -u: a canonical UUID is looked up as a UUID by the backend
    Row("status by uuid", ("-o", "status", "-H", UUID2), OFF, 2),
    Row("off", ("-o", "off", "-H", "vm1"), b"", 0),
    Row("off by uuid", ("-o", "off", "-n", UUID1), b"", 0),
    Row("off unknown vm", ("-o", "off", "-H", "nosuch"), FAILED, 1),
    Row("on shut off", ("-o", "on", "-H", "vm2"), b"", 0),
    Row("on by uuid", ("-o", "on", "-H", UUID2), b"", 0),
    Row("on running", ("-o", "on", "-H", "vm1"), b"", 0),
    Row("reboot running", ("-o", "reboot", "-H", "vm1"), b"", 0),
    Row("reboot default op of shut off", ("-H", "vm2"), b"", 0),
    Row("null", ("-o", "null", "-H", "vm1"), FAILED, 1),
    Row("delay then off", ("-w", "1", "-o", "off", "-H", "vm1"), b"", 0),
    # a delay applied here would outlast run_in's 60 s timeout and fail the row
    Row("delay ignored by status", ("-w", "100", "-o", "status", "-H", "vm1"), ON, 0),
    Row("hash sha1 accepted by a sha1 daemon", ("-c", "sha1", "-o", "list"), ALL, 0,
        daemon={"hash": "sha1"}),
    Row("hash sha512 accepted", ("-c", "sha512", "-o", "status", "-H", "vm1"), ON, 0),
    Row("hash sha1 below minimum", ("-c", "sha1", "-o", "status", "-H", "vm1"), REFUSED, 1,
        racy_prefix=True),
    # C's tcp listener stores "auth" into its hash minimum and always challenges with sha256
    # (fence_virt_testinfra.c_tcp.TcpSetup): a client challenging with anything else fails
    Row("auth sha1 both", ("-C", "sha1", "-c", "sha1", "-o", "status", "-H", "vm1"), REFUSED, 1,
        daemon={"hash": "sha1", "auth": "sha1"}, c_hash_dump=True, with_our_daemon=(ON, 0)),
    Row("auth sha512 both", ("-C", "SHA512", "-c", "sha512", "-o", "list"), REFUSED, 1,
        daemon={"auth": "sha512"}, c_hash_dump=True, with_our_daemon=(ALL, 0)),
    Row("auth sha1 daemon takes sha1 requests", ("-c", "sha1", "-o", "status", "-H", "vm2"), OFF,
        2, daemon={"auth": "sha1"}, c_daemon_only=True),
    Row("auth mismatch", ("-C", "sha1", "-o", "status", "-H", "vm1"), REFUSED, 1,
        c_hash_dump=True),
    Row("wrong key", ("-o", "status", "-H", "vm1"), REFUSED, 1, wrong_key=True, racy_prefix=True),
    # the C daemon challenges anyway and the client does not: the daemon gives up
    Row("no auth no hash", ("-C", "none", "-c", "none", "-o", "status", "-H", "vm2"), FAILED, 1,
        daemon={"auth": "none", "hash": "none"}, with_our_daemon=(OFF, 2)),
    Row("static map denies", ("-o", "status", "-H", "vm1"), DENIED, 3, daemon=DENY_ALL),
    Row("static map hides list", ("-o", "list"), b"", 0, daemon=DENY_ALL),
    Row("static map allows", ("-o", "off", "-H", "vm1"), b"", 0, daemon=ALLOW_VM1),
    Row("static map other vm", ("-o", "off", "-H", "vm2"), DENIED, 3, daemon=ALLOW_VM1),
    Row("static map list", ("-o", "list"), listing(VM1), 0, daemon=ALLOW_VM1),
    Row("ipv6 status", ("-o", "status", "-H", "vm1"), ON, 0, target="::1",
        daemon={"family": "ipv6"}),
    Row("ipv6 list", ("-o", "list"), ALL, 0, target="::1", daemon={"family": "ipv6"}),
    Row("debug status", ("-ddd", "-o", "status", "-H", "vm1"), DEBUG3 + ON, 0),
    Row("debug list", ("-ddd", "-o", "list"), DEBUG3 + ALL, 0),
    Row("debug without auth", ("-ddd", "-C", "none", "-c", "none", "-o", "status", "-H", "vm1"),
        NO_AUTH_TRACES + FAILED, 1,
        daemon={"auth": "none", "hash": "none"}, with_our_daemon=(NO_AUTH_TRACES + ON, 0)),
    Row("stdin status", (), ON, 0, stdin=b"action=status\nport=vm1\nnodename=node1\n"),
    Row("stdin list", (), ALL, 0, stdin=b"# pacemaker\naction=list\n"),
    Row("stdin unknown names", (), OFF, 2,
        stdin=b"agent=fence_virt\naction=status\nplug=vm2\nmulticast_address=x\nuse_uuid=1\n"),
    Row("stdin uuid", (), b"", 0, stdin=f"action=off\nport={UUID1}\n".encode()),
    Row("handshake timeout", ("-t", "1", "-o", "status", "-H", "vm1"),
        b"Error: select: Connection timed out\n" + REFUSED, 1, stopped=True,
        c_out=b"Error: select: Operation now in progress\n" + REFUSED),
    Row("unreachable port", ("-o", "status", "-H", "vm1"),
        b"Unable to connect to fence_virtd host 127.0.0.1:1231 Connection refused\n" + FAILED, 1,
        port=CLOSED_PORT,
        c_out=b"Unable to connect to fence_virtd host 127.0.0.1:1231 Bad file descriptor\n"
        + FAILED),
    Row("unreachable ipv6 port", ("-o", "list"),
        b"Unable to connect to fence_virtd host ::1:1231 Connection refused\n" + FAILED, 1,
        target="::1", port=CLOSED_PORT,
        c_out=b"Unable to connect to fence_virtd host ::1:1231 Bad file descriptor\n" + FAILED),
    Row("no route", ("-o", "status", "-H", "vm1"),
        b"Unable to connect to fence_virtd host 192.0.2.9:1229 Network is unreachable\n"
        + FAILED, 1, target="192.0.2.9"),
    Row("connect timeout", ("-o", "status", "-H", "vm1"),
        b"Unable to connect to fence_virtd host 198.51.100.50:1229 Connection timed out\n"
        + FAILED, 1, target="198.51.100.50"),
]  # fmt: skip


@contextmanager
def our_fence_virtd_tcp(ns: NetNS, workdir: Path, setup: TcpSetup) -> Iterator[Daemon]:
    """Our fence_virtd with the tcp listener plugin; skips when it is not installed."""
    needed = (("fence_virt.listeners", "tcp"), ("fence_virt.backends", "libvirt"))
    missing = [
        f"{group}:{name}" for group, name in needed if not entry_points(group=group, name=name)
    ]
    if missing:
        unavailable(f"our fence_virtd lacks {', '.join(missing)}")
    workdir.mkdir(parents=True, exist_ok=True)
    with running_fence_virtd(ns, workdir, setup.write(workdir / "fence_virt.conf")) as daemon:
        yield daemon


FACTORIES: dict[str, DaemonFactory] = {"c": c_fence_virtd_tcp, "ours": our_fence_virtd_tcp}


@pytest.fixture(scope="module")
def space() -> Iterator[NetNS]:
    """``lo`` and a dummy interface holding 198.51.100.1/24 that drops every packet."""
    skip_unless_netns()
    with netns("virt") as namespace:
        blackhole(namespace)
        yield namespace


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("keys")
    return c_suite.write_key(base / "right.key"), c_suite.write_key(base / "wrong.key")


def client_argv(client: str, row: Row, key: Path) -> tuple[list[str], bytes | None]:
    """Always an explicit TCP target: ``-T`` on the command line or ``ipaddr=`` on stdin."""
    if row.stdin is None:
        return [client, "-T", row.target, "-p", str(row.port), "-k", str(key), *row.argv], None
    lines = f"ipaddr={row.target}\nipport={row.port}\nkey_file={key}\n".encode()
    return [client], row.stdin + lines


def run_row(
    client: str, row: Row, ns: NetNS, workdir: Path, keys: tuple[Path, Path], factory: DaemonFactory
) -> subprocess.CompletedProcess[bytes]:
    uri = c_suite.write_test_node(workdir / "node.xml")
    setup = TcpSetup(key_file=keys[0], uri=uri, port=PORT, **row.daemon)  # type: ignore[arg-type]
    key = keys[1] if row.wrong_key else keys[0]
    argv, stdin = client_argv(client, row, key)
    with factory(ns, workdir / "daemon", setup) as daemon:
        if row.stopped:
            os.kill(daemon.pid, signal.SIGSTOP)
        try:
            result = c_suite.run_in(ns, argv, stdin, timeout=60)
        finally:
            if row.stopped:
                os.kill(daemon.pid, signal.SIGCONT)
    return subprocess.CompletedProcess(
        result.args, result.returncode, clean(result.stdout, key), clean(result.stderr, key)
    )


def clean(data: bytes, key: Path) -> bytes:
    """The key path as ``KEY``; C's ``-d`` addresses (``-- args @ 0x...``, ``into 0x...``) and
    the dump itself left out (test_virt_cli.py compares dumps)."""
    data = re.sub(rb"-- args @ 0x[0-9a-f]+ --", b"-- args --", data)
    data = re.sub(rb" into 0x[0-9a-f]+ \(", b" (", data)
    data = re.sub(
        rb"(?s)Debugging threshold is now \d+\n-- args --\n.*?-- end args --\n", b"", data
    )
    return data.replace(str(key).encode(), b"KEY")


# each row against each daemon, except rows that pin a quirk of the C daemon alone
CASES = [
    pytest.param(row, kind, id=f"{kind}-{row.name}")
    for kind in sorted(FACTORIES)
    for row in ROWS
    if kind == "c" or not row.c_daemon_only
]


@pytest.mark.parametrize(("row", "daemon_kind"), CASES)
def test_row(
    row: Row,
    daemon_kind: str,
    space: NetNS,
    tmp_path: Path,
    keys: tuple[Path, Path],
    ours_virt: str,
    c_fence_virt: str,
) -> None:
    factory = FACTORIES[daemon_kind]
    theirs = run_row(c_fence_virt, row, space, tmp_path / "c", keys, factory)
    mine = run_row(ours_virt, row, space, tmp_path / "ours", keys, factory)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr)
    expected = (row.out, row.rc)
    if daemon_kind == "ours" and row.with_our_daemon is not None:
        expected = row.with_our_daemon
    if row.racy_prefix:
        # "Error reading challenge response: <ECONNRESET or EPIPE>", no newline, as C
        for out in (mine.stdout, theirs.stdout):
            assert out.startswith(b"Error reading challenge response: ")
            assert out.endswith(
                (b": Connection reset by peer" + row.out, b": Broken pipe" + row.out)
            )
        assert mine.returncode == row.rc
        return
    assert (mine.stdout, mine.returncode) == expected
    # the C client dumps both digests whenever a challenge answer does not verify, whichever
    # daemon sent it (a row that succeeds against ours has nothing to dump)
    if row.c_hash_dump and expected[1] != 0:
        assert theirs.stdout.startswith(b"Hash mismatch:\nC = ")
        assert theirs.stdout.endswith(b"\n" + row.out)
    elif row.c_out is not None:
        assert theirs.stdout == row.c_out
    else:
        assert theirs.stdout == mine.stdout
