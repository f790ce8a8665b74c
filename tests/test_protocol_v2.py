"""Protocol v2 against the real daemon and our agents, and the attacks C mode cannot stop.

Every daemon (ours, tcp or multicast listener, in-memory backend holding vm1 and vm2) and
every agent runs in a network namespace the test made; the attacker's sockets are made in
that namespace too (a socket stays in the namespace it was made in, whichever thread uses
it). Each attack is scripted twice, on the same daemon build: in C mode (``protocol = "c"``,
our agents with ``-c sha256``), where it succeeds -- which is why v2 exists -- and in v2
(``protocol = "v2"``, ``-c v2``), where the daemon and the agent refuse it. What the
backend did is read from the daemon's log (one ``INFO: off vm1 (requester ...`` line per
request that reached it).

The attacker never holds the key: it has only what it captured on the wire (a relay between
an agent and a daemon records the request) and what daemons answer it.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fence_virt.listening.v2 import C_REFUSED
from fence_virt.protocol import FENCE_REQ_SIZE
from fence_virt_testinfra.c_suite import run_c_fence_xvm, run_in
from fence_virt_testinfra.c_tcp import have_c_fence_virt, run_c_fence_virt_tcp
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import our_agent, running_fence_virtd
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.setns import in_netns
from fence_virt_testinfra.tools import unavailable

pytestmark = [pytest.mark.netns]

LOOPBACK = "127.0.0.1"
MEMORY = 'backends {\n\tmemory {\n\t\tvm = "vm1";\n\t\tvm = "vm2";\n\t}\n}\n'
#: seconds for one socket step of an attack script
STEP = 10.0


def dispatched(log: str, operation: str, domain: str) -> int:
    """How many ``operation domain`` requests reached the backend."""
    return len(re.findall(rf"INFO: {operation} {re.escape(domain)} \(requester ", log))


class Lab:
    """Daemons in one namespace (stopped by PID at the end) and our agents run there."""

    def __init__(self, ns: NetNS, key: Path, tmp: Path, stack: contextlib.ExitStack) -> None:
        self.ns = ns
        self.key = key
        self._tmp = tmp
        self._stack = stack
        self._count = 0

    def tcp_daemon(self, port: int, protocol: str, **keys: str) -> Daemon:
        """Our fence_virtd -d 1 with one tcp listener on 127.0.0.1:``port``."""
        return self._daemon("tcp", {"port": str(port), "protocol": protocol, **keys})

    def multicast_daemon(self, protocol: str, **keys: str) -> Daemon:
        """Our fence_virtd -d 1 with the multicast listener on ``lo``."""
        return self._daemon("multicast", {"interface": "lo", "protocol": protocol, **keys})

    def _daemon(self, listener: str, keys: dict[str, str]) -> Daemon:
        self._count += 1
        workdir = self._tmp / f"daemon{self._count}"
        workdir.mkdir()
        values = {"key_file": str(self.key), **keys}
        values.setdefault("replay_state", str(workdir / "replay.state"))
        lines = "".join(f'\t\t{name} = "{value}";\n' for name, value in values.items())
        config = workdir / "fence_virt.conf"
        config.write_text(
            f'fence_virtd {{\n\tlistener = "{listener}";\n\tbackend = "memory";\n}}\n'
            f"listeners {{\n\t{listener} {{\n{lines}\t}}\n}}\n{MEMORY}"
        )
        config.chmod(0o600)
        return self._stack.enter_context(running_fence_virtd(self.ns, workdir, config, debug=1))

    def agent_argv(self, name: str, *args: str) -> list[str]:
        agent = our_agent(name)
        if agent is None:
            unavailable(f"our {name} is not installed")
        return [str(agent), "-k", str(self.key), *args]

    def agent(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Our ``name`` (fence_virt with -T, fence_xvm) run in the namespace."""
        done = run_in(self.ns, self.agent_argv(name, *args), timeout=90)
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    def socket(self) -> socket.socket:
        """A TCP socket in the namespace."""
        sock: socket.socket = in_netns(self.ns, socket.socket)
        sock.settimeout(STEP)
        self._stack.callback(sock.close)
        return sock

    def connect(self, port: int) -> socket.socket:
        sock = self.socket()
        sock.connect((LOOPBACK, port))
        return sock

    def listen(self) -> tuple[socket.socket, int]:
        sock = self.socket()
        sock.bind((LOOPBACK, 0))
        sock.listen(1)
        return sock, sock.getsockname()[1]


@pytest.fixture
def lab(ns: NetNS, key_file: Path, tmp_path: Path) -> Iterator[Lab]:
    with contextlib.ExitStack() as stack:
        yield Lab(ns, key_file, tmp_path, stack)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_all(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (b"" on a reset)."""
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


Rewrite = Callable[[bytes, int], bytes]


def relay(
    lab: Lab, upstream_port: int, agent_args: list[str], rewrite: Rewrite | None = None
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run our fence_virt -T through a relay to ``upstream_port``: what the agent ended with,
    and the 176-byte request it sent (captured). ``rewrite(chunk, offset)`` may change each
    chunk the host sends, ``offset`` being how many host bytes came before it (a MITM)."""
    listener, port = lab.listen()
    argv = lab.agent_argv("fence_virt", "-T", LOOPBACK, "-p", str(port), *agent_args)
    agent = subprocess.Popen(lab.ns.argv(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    captured = bytearray()
    try:
        client, _ = listener.accept()
        client.settimeout(STEP)
        host = lab.connect(upstream_port)
        _pump(client, host, captured, rewrite)
        client.close()
    finally:
        out, err = agent.communicate(timeout=90)
    done = subprocess.CompletedProcess(agent.args, agent.returncode, out, err)
    return done, bytes(captured[:FENCE_REQ_SIZE])


def _pump(
    client: socket.socket, host: socket.socket, captured: bytearray, rewrite: Rewrite | None
) -> None:
    from_host = 0
    open_ends = {client, host}
    deadline = time.monotonic() + 60
    while open_ends and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_ends), [], [], 1)
        for sock in ready:
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            other = host if sock is client else client
            if not data:
                open_ends.clear()  # one side hung up: the relay hangs up on the other
                break
            if sock is client:
                captured += data
            else:
                if rewrite is not None:
                    data = rewrite(data, from_host)
                from_host += len(data)
            with contextlib.suppress(OSError):
                other.sendall(data)


def capture(lab: Lab, port: int, *agent_args: str) -> bytes:
    """A request our agent sends to the daemon on ``port`` (which serves it), recorded."""
    done, request = relay(lab, port, list(agent_args))
    assert done.returncode in (0, 2), done
    assert len(request) == FENCE_REQ_SIZE
    return request


# ----- attack scripts: the attacker holds captured requests, never the key ---------------


def c_replay_with_reflection(
    lab: Lab, target: int, request: bytes, oracle: int, oracle_request: bytes
) -> bytes:
    """C mode: replay ``request`` to ``target``; to answer its challenge, replay
    ``oracle_request`` to ``oracle`` and send that challenge as ours: the host answers it
    (c-suite-spec §3.3, symmetric unbound proofs). Returns what ``target`` answered."""
    victim = lab.connect(target)
    victim.sendall(request + os.urandom(64))
    recv_exactly(victim, 64)  # the host's answer to our challenge: proves nothing to us
    challenge = recv_exactly(victim, 64)
    helper = lab.connect(oracle)
    helper.sendall(oracle_request + challenge)
    answer = recv_exactly(helper, 64)
    helper.close()
    victim.sendall(answer)
    return recv_all(victim)


def v2_replay_with_reflection(
    lab: Lab, target: int, request: bytes, oracle: int, oracle_request: bytes
) -> bytes:
    """The same script in v2: the host's proof (Nh ‖ proof) from a second connection whose
    Nc is the first one's Nh, sent back as the client's proof."""
    victim = lab.connect(target)
    victim.sendall(request + os.urandom(32))
    nh = recv_exactly(victim, 64)[:32]
    helper = lab.connect(oracle)
    helper.sendall(oracle_request + nh)
    reflected = recv_exactly(helper, 64)[32:]
    helper.close()
    victim.sendall(reflected)
    return recv_all(victim)


# ----- v2 works, C peers as configured ----------------------------------------------------


def test_our_agents_in_v2_against_a_v2_daemon_tcp(lab: Lab) -> None:
    daemon = lab.tcp_daemon(31229, "v2")

    def virt(*args: str) -> tuple[int, str]:
        done = lab.agent("fence_virt", "-T", LOOPBACK, "-p", "31229", "-c", "v2", *args)
        return done.returncode, done.stdout

    assert virt("-o", "status", "-H", "vm1") == (0, "Status: ON\n")
    assert virt("-o", "off", "-H", "vm1") == (0, "")
    assert virt("-o", "status", "-H", "vm1") == (2, "Status: OFF\n")
    listing = virt("-o", "list")
    assert listing[0] == 0
    assert [line.split()[::2] for line in listing[1].splitlines()] == [
        ["vm1", "off"],
        ["vm2", "on"],
    ]
    assert virt("-o", "monitor") == (0, "")
    assert dispatched(daemon.log(), "off", "vm1") == 1


def test_our_agent_in_v2_against_a_v2_daemon_multicast(lab: Lab) -> None:
    daemon = lab.multicast_daemon("v2")
    done = lab.agent("fence_xvm", "-c", "v2", "-t", "10", "-o", "off", "-H", "vm2")
    assert (done.returncode, done.stdout) == (0, ""), done
    done = lab.agent("fence_xvm", "-c", "v2", "-t", "10", "-o", "status", "-H", "vm2")
    assert (done.returncode, done.stdout) == (2, "Status: OFF\n"), done
    assert dispatched(daemon.log(), "off", "vm2") == 1


def test_a_daemon_allowing_both_serves_c_mode_and_v2(lab: Lab) -> None:
    daemon = lab.tcp_daemon(31229, "both")
    base = ("fence_virt", "-T", LOOPBACK, "-p", "31229")
    assert lab.agent(*base, "-c", "v2", "-o", "off", "-H", "vm1").returncode == 0
    assert lab.agent(*base, "-o", "on", "-H", "vm1").returncode == 0  # our agent, C mode
    log = daemon.log()
    assert dispatched(log, "off", "vm1") == dispatched(log, "on", "vm1") == 1


def test_c_agents_against_a_v2_only_daemon_are_refused_with_a_clear_line(lab: Lab) -> None:
    daemon = lab.tcp_daemon(31229, "v2")
    mcast = lab.multicast_daemon("v2")
    ours = lab.agent(
        "fence_virt", "-T", LOOPBACK, "-p", "31229", "-t", "3", "-o", "off", "-H", "vm1"
    )
    assert ours.returncode == 1
    if have_c_fence_virt():
        done = run_c_fence_virt_tcp(
            lab.ns, lab.key, LOOPBACK, "-t", "3", "-o", "off", "-H", "vm1", port=31229
        )
        assert done.returncode != 0, done
        xvm = run_c_fence_xvm(lab.ns, lab.key, "-t", "3", "-o", "off", "-H", "vm2")
        assert xvm.returncode != 0, xvm
        assert C_REFUSED in mcast.log()
    log = daemon.log()
    assert C_REFUSED in log
    assert "a C agent sent hash type 2: configure the agent with hash=v2" in log
    assert dispatched(log, "off", "vm1") == dispatched(mcast.log(), "off", "vm2") == 0


def test_c_agent_against_a_daemon_allowing_both_is_served_in_c_mode(lab: Lab) -> None:
    if not have_c_fence_virt():
        unavailable("the C fence_virt is not installed")
    daemon = lab.tcp_daemon(31229, "both")
    done = run_c_fence_virt_tcp(lab.ns, lab.key, LOOPBACK, "-o", "off", "-H", "vm1", port=31229)
    assert done.returncode == 0, done
    assert dispatched(daemon.log(), "off", "vm1") == 1


def test_a_v2_agent_never_falls_back_to_c_mode(lab: Lab) -> None:
    """Against a daemon in C mode (or a C daemon) a v2 agent fails: no silent downgrade."""
    daemon = lab.tcp_daemon(31229, "c")
    mcast = lab.multicast_daemon("c")
    done = lab.agent(
        "fence_virt", "-T", LOOPBACK, "-p", "31229", "-c", "v2", "-t", "3", "-o", "off", "-H", "vm1"
    )
    assert done.returncode == 1
    xvm = lab.agent("fence_xvm", "-c", "v2", "-t", "2", "-o", "off", "-H", "vm1")
    assert xvm.returncode == 1
    assert "unknown hash type 32" in daemon.log()
    assert "unknown hash type 32" in mcast.log()
    assert dispatched(daemon.log(), "off", "vm1") == dispatched(mcast.log(), "off", "vm1") == 0


# ----- replay to a second daemon, with reflection --------------------------------------------


def test_replay_to_a_second_daemon_with_reflection(lab: Lab) -> None:
    """Two requests captured on their way to daemon A are replayed to daemon B (same key,
    never saw them): the first as the attack, the second to make B answer B's own
    challenge. C mode: B powers vm1 off. v2: B refuses the reflected host proof."""
    for protocol, args, script in (
        ("c", ("-c", "sha256"), c_replay_with_reflection),
        ("v2", ("-c", "v2"), v2_replay_with_reflection),
    ):
        first = lab.tcp_daemon(31229, protocol)
        second = lab.tcp_daemon(31230, protocol)
        attack = capture(lab, 31229, *args, "-o", "off", "-H", "vm1")
        oracle = capture(lab, 31229, *args, "-o", "status", "-H", "vm2")
        assert dispatched(first.log(), "off", "vm1") == 1
        answer = script(lab, 31230, attack, 31230, oracle)
        if protocol == "c":
            assert answer == b"\x00", "C mode: the replay was carried out"
            assert dispatched(second.log(), "off", "vm1") == 1
        else:
            assert answer == b""
            assert dispatched(second.log(), "off", "vm1") == 0
            assert "v2 client proof mismatch" in second.log()
        first.stop()
        second.stop()


def test_replay_after_the_window(lab: Lab) -> None:
    """Captured requests replayed to the same daemon once its replay memory forgot them
    (``replay_window`` 10 s, the shortest; a restart without a state file forgets too):
    C mode carries the replay out (reflection for the challenge), v2 refuses it by its
    timestamp (``v2_window`` 2 s)."""
    keys = {"replay_window": "10", "v2_window": "2"}
    c_daemon = lab.tcp_daemon(31229, "c", **keys)
    v2_daemon = lab.tcp_daemon(31230, "v2", **keys)
    c_attack = capture(lab, 31229, "-o", "off", "-H", "vm1")
    c_oracle = capture(lab, 31229, "-o", "status", "-H", "vm2")
    v2_attack = capture(lab, 31230, "-c", "v2", "-o", "off", "-H", "vm1")
    # within the window the replay memory refuses both
    assert recv_all_after(lab, 31229, c_attack) == b""
    assert recv_all_after(lab, 31230, v2_attack) == b""
    time.sleep(10.5)
    assert c_replay_with_reflection(lab, 31229, c_attack, 31229, c_oracle) == b"\x00"
    assert dispatched(c_daemon.log(), "off", "vm1") == 2, "C mode: the replay ran again"
    assert recv_all_after(lab, 31230, v2_attack) == b""
    log = v2_daemon.log()
    assert re.search(r"v2 request timestamp 1\d\.\d s old, outside the 2 s window", log), log
    assert dispatched(log, "off", "vm1") == 1


def recv_all_after(lab: Lab, port: int, request: bytes) -> bytes:
    """Send ``request`` and a challenge-sized hello; what the host sends back."""
    sock = lab.connect(port)
    sock.sendall(request + os.urandom(64))
    data = recv_all(sock)
    sock.close()
    return data


# ----- forged results ------------------------------------------------------------------------


def test_a_man_in_the_middle_rewrites_the_result(lab: Lab) -> None:
    """The relay turns the host's failure (no such VM) into success. C mode: our agent
    reports success. v2: the result's MAC does not match, the agent fails."""
    lab.tcp_daemon(31229, "both")

    def to_success(start: int) -> Rewrite:
        def rewrite(data: bytes, offset: int) -> bytes:
            at = start - offset
            return data[:at] + b"\x00" + data[at + 1 :] if 0 <= at < len(data) else data

        return rewrite

    done, _ = relay(lab, 31229, ["-o", "off", "-H", "nosuch"], to_success(128))
    assert done.returncode == 0, "C mode: the forged success was believed"
    done, _ = relay(lab, 31229, ["-c", "v2", "-o", "off", "-H", "nosuch"], to_success(64 + 4))
    assert done.returncode == 1
    assert b"Result refused: not authenticated by the host" in done.stdout


def test_a_host_without_the_key_answers_success(lab: Lab) -> None:
    """A fake host (no key) takes the agent's connection. To pass the agent's challenge it
    replays a request captured on its way to daemon A to daemon B (which never saw it) and
    asks B. C mode: the agent then believes its "success", though nothing was fenced. v2:
    B's proof is bound to the captured request, not the agent's: the agent refuses it."""
    daemon = lab.tcp_daemon(31229, "both")
    oracle = lab.tcp_daemon(31230, "both")
    for args, hello in ((("-c", "sha256"), 64), (("-c", "v2"), 32)):
        old = capture(lab, 31229, *args, "-o", "status", "-H", "vm1")
        fake, port = lab.listen()
        argv = lab.agent_argv(
            "fence_virt", "-T", LOOPBACK, "-p", str(port), *args, "-o", "off", "-H", "vm1"
        )
        agent = subprocess.Popen(lab.ns.argv(*argv), stdout=subprocess.PIPE)
        outcome: dict[str, bytes] = {}
        thread = threading.Thread(target=_fake_host, args=(lab, fake, old, hello, outcome))
        thread.start()
        out, _ = agent.communicate(timeout=60)
        thread.join(60)
        if hello == 64:
            assert agent.returncode == 0, "C mode: a host without the key faked success"
        else:
            assert agent.returncode == 1
            assert b"Invalid response to challenge" in out
            assert "proof" not in outcome, "the agent proved nothing to the fake host"
    assert dispatched(daemon.log(), "off", "vm1") == dispatched(oracle.log(), "off", "vm1") == 0


def _fake_host(
    lab: Lab, fake: socket.socket, old: bytes, hello: int, outcome: dict[str, bytes]
) -> None:
    conn, _ = fake.accept()
    conn.settimeout(STEP)
    recv_exactly(conn, FENCE_REQ_SIZE)
    challenge = recv_exactly(conn, hello)
    oracle = lab.connect(31230)
    oracle.sendall(old + challenge)
    answer = recv_exactly(oracle, 64)
    oracle.close()
    if hello == 64:  # C: the oracle's answer is H(key ‖ C1); then our challenge, then "success"
        conn.sendall(answer[:64] + os.urandom(64))
        recv_exactly(conn, 64)
        conn.sendall(b"\x00")
    else:  # v2: the daemon's Nh ‖ proof, bound to the old request
        conn.sendall(answer)
        if proof := recv_exactly(conn, 32):
            outcome["proof"] = proof
    conn.close()
