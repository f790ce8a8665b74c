"""The interop table: our fence_xvm and the C fence_xvm against the same kind of daemon.

Each row runs the C client and ours, each against a freshly started daemon (multicast
listener, libvirt backend on a test-driver node with a running, a shut-off and a paused VM),
so both see the same starting state, and compares stdout, stderr and exit code. Every row
also pins the expected outcome, so a table where both clients fail alike still fails.

The daemon is a parameter: the C fence_virtd, and our fence_virtd with the
``fence-virt-listener-multicast`` and ``fence-virt-backend-libvirt`` plugins (skipped when
those distributions are not installed). Everything runs in namespaces holding only ``lo``, or
the test's own veth for IPv6.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fence_virt_testinfra import c_suite
from fence_virt_testinfra.c_suite import MulticastSetup
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.ours import our_fence_virtd
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.topology import veth_pair

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

DaemonFactory = Callable[[NetNS, Path, MulticastSetup], AbstractContextManager[Daemon]]

ON = b"Status: ON\n"
OFF = b"Status: OFF\n"
FAILED = b"Operation failed\n"
DENIED = b"Permission denied\n"
TIMED_OUT = b"Timed out waiting for response\nOperation failed\n"
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
    """One line of the table: client arguments (``-k`` added), daemon settings, outcome."""

    name: str
    argv: tuple[str, ...]
    out: bytes
    rc: int
    stdin: bytes | None = None
    daemon: dict[str, object] = field(default_factory=dict)
    #: the client signs with a key the daemon does not have
    wrong_key: bool = False
    #: C prints random hex dumps here (challenge mismatch): compare exit codes only
    c_out_differs: bool = False
    #: output starts with a read error whose errno depends on timing: compare the ending
    racy_prefix: bool = False
    #: (out, rc) where our daemon deliberately answers otherwise than the C one
    with_our_daemon: tuple[bytes, int] | None = None

    @property
    def timed_out(self) -> bool:
        return self.out == TIMED_OUT


SHORT = ("-t", "1", "-r", "10")  # rows that end in a timeout: one attempt of one second
DENY_ALL = {"groups": [("others", ["198.51.100.99"], ["vm1"])]}
ALLOW_VM1 = {"groups": [("guests", ["127.0.0.1"], ["vm1"])]}

ROWS = [
    Row("list", ("-o", "list"), ALL, 0),
    Row("list-status", ("-o", "list-status"), ALL, 0),
    Row("monitor", ("-o", "monitor"), b"", 0),
    Row("status running", ("-o", "status", "-H", "vm1"), ON, 0),
    Row("status shut off", ("-o", "status", "-n", "vm2"), OFF, 2),
    Row("status paused", ("-o", "status", "-H", VM3[0]), ON, 0),
    # the C libvirt backend calls an unknown VM off; ours says it cannot tell (failure)
    Row("status unknown vm", ("-o", "status", "-H", "nosuch"), OFF, 2, with_our_daemon=(FAILED, 1)),
    Row("status by uuid", ("-o", "status", "-u", "-H", UUID2), OFF, 2),
    Row("off", ("-o", "off", "-H", "vm1"), b"", 0),
    Row("off unknown vm", ("-o", "off", "-H", "nosuch"), FAILED, 1),
    Row("off by uuid", ("-o", "off", "-u", "-H", UUID1), b"", 0),
    Row("on shut off", ("-o", "on", "-H", "vm2"), b"", 0),
    Row("on running", ("-o", "on", "-H", "vm1"), b"", 0),
    Row("reboot running", ("-o", "reboot", "-H", "vm1"), b"", 0),
    Row("reboot default op of shut off", ("-H", "vm2"), b"", 0),
    Row("null", ("-o", "null", "-H", "vm1"), FAILED, 1),
    Row("delay then off", ("-w", "1", "-o", "off", "-H", "vm1"), b"", 0),
    # a delay applied here would outlast run_in's 60 s timeout and fail the row
    Row("delay ignored by status", ("-w", "100", "-o", "status", "-H", "vm1"), ON, 0),
    Row("explicit group and family", ("-a", "225.0.0.12", "-i", "ipv4", "-o", "list"), ALL, 0),
    Row("hash sha512 accepted", ("-c", "sha512", "-o", "status", "-H", "vm1"), ON, 0),
    Row(
        "hash sha1 below minimum", ("-c", "sha1", "-o", "status", "-H", "vm1", *SHORT), TIMED_OUT, 1
    ),
    Row("wrong key", ("-o", "status", "-H", "vm1", *SHORT), TIMED_OUT, 1, wrong_key=True),
    Row(
        "auth sha1 both",
        ("-C", "sha1", "-o", "status", "-H", "vm1"),
        ON,
        0,
        daemon={"auth": "sha1"},
    ),
    Row("auth sha512 both", ("-C", "SHA512", "-o", "list"), ALL, 0, daemon={"auth": "sha512"}),
    Row(
        "hash sha1 both",
        ("-c", "sha1", "-o", "status", "-H", "vm1"),
        ON,
        0,
        daemon={"hash": "sha1"},
    ),
    Row(
        "no auth no hash",
        ("-C", "none", "-c", "none", "-o", "status", "-H", "vm2"),
        OFF,
        2,
        daemon={"auth": "none", "hash": "none"},
    ),
    Row(
        "auth mismatch",
        ("-C", "sha1", "-o", "status", "-H", "vm1"),
        b"Invalid response to challenge\n" + FAILED,
        1,
        c_out_differs=True,
    ),
    Row(
        "host skips challenge",
        ("-o", "status", "-H", "vm1"),
        b"Invalid response to challenge\n" + FAILED,
        1,
        daemon={"auth": "none"},
        racy_prefix=True,
    ),
    Row("static map denies", ("-o", "status", "-H", "vm1"), DENIED, 3, daemon=DENY_ALL),
    Row("static map hides list", ("-o", "list"), b"", 0, daemon=DENY_ALL),
    Row("static map allows", ("-o", "off", "-H", "vm1"), b"", 0, daemon=ALLOW_VM1),
    Row("static map other vm", ("-o", "off", "-H", "vm2"), DENIED, 3, daemon=ALLOW_VM1),
    Row("static map list", ("-o", "list"), listing(VM1), 0, daemon=ALLOW_VM1),
    Row("stdin status", (), ON, 0, stdin=b"action=status\nport=vm1\nnodename=node1\n"),
    Row("stdin list", (), ALL, 0, stdin=b"# pacemaker\naction=list\n"),
    Row(
        "stdin unknown names",
        (),
        OFF,
        2,
        stdin=b"agent=fence_xvm\naction=status\nplug=vm2\nipaddr=10.0.0.1\npcmk_x=1\n",
    ),
    Row("stdin uuid", (), b"", 0, stdin=f"action=off\nport={UUID1}\nuse_uuid=1\n".encode()),
]


FACTORIES: dict[str, DaemonFactory] = {"c": c_suite.c_fence_virtd, "ours": our_fence_virtd}


@pytest.fixture(params=sorted(FACTORIES))
def daemon_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def daemon_factory(daemon_kind: str) -> DaemonFactory:
    return FACTORIES[daemon_kind]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("keys")
    return c_suite.write_key(base / "right.key"), c_suite.write_key(base / "wrong.key")


def client_argv(client: str, row: Row, key: Path) -> tuple[list[str], bytes | None]:
    if row.stdin is None:
        return [client, "-k", str(key), *row.argv], None
    return [client], row.stdin + f"key_file={key}\n".encode()


def run_row(
    client: str, row: Row, ns: NetNS, workdir: Path, keys: tuple[Path, Path], factory: DaemonFactory
) -> subprocess.CompletedProcess[bytes]:
    uri = c_suite.write_test_node(workdir / "node.xml")
    setup = MulticastSetup(key_file=keys[0], uri=uri, **row.daemon)  # type: ignore[arg-type]
    argv, stdin = client_argv(client, row, keys[1] if row.wrong_key else keys[0])
    with factory(ns, workdir / "daemon", setup):
        return c_suite.run_in(ns, argv, stdin, timeout=60)


def without_hint(out: bytes) -> bytes:
    """Our timeout output minus the hint line C does not print."""
    return b"".join(
        line for line in out.splitlines(keepends=True) if not line.startswith(b"Hint: ")
    )


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_row(
    row: Row,
    daemon_kind: str,
    daemon_factory: DaemonFactory,
    ns: NetNS,
    tmp_path: Path,
    keys: tuple[Path, Path],
    ours: str,
    c_fence_xvm: str,
) -> None:
    theirs = run_row(c_fence_xvm, row, ns, tmp_path / "c", keys, daemon_factory)
    mine = run_row(ours, row, ns, tmp_path / "ours", keys, daemon_factory)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr)
    if row.racy_prefix:
        assert mine.returncode == row.rc
        # "Error reading challenge response: <ECONNRESET or EPIPE>", no newline, as C
        for out in (mine.stdout, theirs.stdout):
            assert out.startswith(b"Error reading challenge response: ")
            assert out.endswith(b": Connection reset by peer" + row.out) or out.endswith(
                b": Broken pipe" + row.out
            )
        return
    if not row.c_out_differs:
        assert without_hint(mine.stdout) == theirs.stdout
    expected = (row.out, row.rc)
    if daemon_kind == "ours" and row.with_our_daemon is not None:
        expected = row.with_our_daemon
    assert (without_hint(mine.stdout), mine.returncode) == expected
    if row.timed_out:
        assert b"Hint: no host connected back: inbound TCP port 1229" in mine.stdout


IPV6_ROWS = [
    Row("ipv6 list", ("-i", "ipv6", "-o", "list"), ALL, 0),
    Row("ipv6 status by group", ("-a", "ff05::3:1", "-o", "status", "-H", "vm1"), ON, 0),
    Row("ipv6 off", ("-i", "ipv6", "-o", "off", "-H", "vm1"), b"", 0),
]


@pytest.fixture(scope="module")
def ipv6_pair() -> Iterator[tuple[NetNS, NetNS]]:
    """A guest namespace and a host namespace joined by a veth (IPv6 only, no DAD)."""
    with netns("guest6") as guest, netns("host6") as host:
        veth_pair(guest, host, ("fvtg6", "fvth6"), ("2001:db8:5::10/64", "2001:db8:5::1/64"))
        yield guest, host


@pytest.mark.parametrize("row", IPV6_ROWS, ids=lambda row: row.name)
def test_ipv6_row(
    row: Row,
    daemon_factory: DaemonFactory,
    ipv6_pair: tuple[NetNS, NetNS],
    tmp_path: Path,
    keys: tuple[Path, Path],
    ours: str,
    c_fence_xvm: str,
) -> None:
    guest, host = ipv6_pair
    results = []
    for index, client in enumerate((c_fence_xvm, ours)):
        workdir = tmp_path / str(index)
        uri = c_suite.write_test_node(workdir / "node.xml")
        setup = MulticastSetup(key_file=keys[0], uri=uri, family="ipv6", interface="fvth6")
        with daemon_factory(host, workdir / "daemon", setup):
            results.append(c_suite.run_in(guest, [client, "-k", str(keys[0]), *row.argv]))
    theirs, mine = results
    assert (mine.stdout, mine.stderr, mine.returncode) == (
        theirs.stdout,
        theirs.stderr,
        theirs.returncode,
    )
    assert (mine.stdout, mine.returncode) == (row.out, row.rc)
