"""Issue 17, "Replay": the C fence_xvm's own datagrams, captured and replayed seconds, minutes
and an hour later, across a restart, and to a second host.

Everything runs in namespaces the test made: the Debian ``fence_xvm``, our fence_virtd
(multicast listener, in-memory backend) and the replays, sent from a socket made in the
client's namespace with the bytes an ``AF_PACKET`` socket captured there
(:class:`fence_virt_testinfra.capture.Sniffer`). "Minutes" and "an hour" are the daemon's
time: it runs under libfaketime (:class:`fence_virt_testinfra.faketime.FakeClock`), whose
offset the test raises while the daemon runs, moving its wall and monotonic clocks alike.
That the daemon's clocks really moved is asserted twice: the refusal lines give the age
of the request as the daemon saw it, and past the window a replay is carried out again.

Why the daemon is held (SIGSTOP) while the C client starts: fence_xvm retransmits only
while no host has connected back (c-suite-spec §4.6), and our host connects back before it
runs the backend -- a slow backend alone never makes the C client retransmit. Holding the
host for three retransmit periods is a host slow to answer, as under load; the datagrams
wait in its socket and are read when it resumes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from fence_virt.protocol import FenceRequest
from fence_virt.protocol.v2 import V2_HASHTYPE
from fence_virt_testinfra.capture import Sniffer, multicast_sender
from fence_virt_testinfra.faketime import FakeClock
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_XVM
from fence_virt_testinfra.processes import Daemon, wait_until
from fence_virt_testinfra.setns import in_netns
from fence_virt_testinfra.topology import BRIDGE_CLIENT_IP, bridged_hosts

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

GROUP = "225.0.0.12"
#: above an hour, so that "an hour later" is inside it; the test then goes past it
WINDOW = 3700
HOUR = 3600
#: the guest's second address: fence_xvm sends one copy of every attempt per address
SECOND_ADDRESS = "198.51.100.2"
#: fence_xvm -r 5: a retransmit every 0.5 s
RETRANS_TENTHS = "5"
#: attempts seen while the host is held (two copies each)
HELD_ATTEMPTS = 3

REFUSED = re.compile(r"replayed copy of a request received (\d+) s ago")
COUNTED = re.compile(r"refused (\d+) more replayed copies from ([\d.]+) in the last 60 s")
V2_REFUSED = re.compile(r"v2 request timestamp (\d+)\.\d s old, outside the 30 s window")


def executed(log: str, operation: str, domain: str) -> int:
    """Requests that reached the backend (one INFO line each)."""
    return len(re.findall(rf"INFO: {operation} {re.escape(domain)} \(requester ", log))


def accepted(log: str) -> int:
    """Datagrams taken as a new request (the first copy of each; debug line)."""
    return log.count(": accepted (UDP from ")


def refusal_ages(daemon: Daemon) -> list[int]:
    """The age, in the daemon's seconds, of every replayed request it logged refusing."""
    return [int(age) for age in REFUSED.findall(daemon.log())]


def run(ns: NetNS, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ns.argv(*argv), capture_output=True, text=True, timeout=60, check=False)


def replay(sock: socket.socket, datagrams: list[bytes], port: int = 1229) -> None:
    for data in datagrams:
        sock.sendto(data, (GROUP, port))


def replay_refused(daemon: Daemon, sock: socket.socket, datagrams: list[bytes]) -> int:
    """Replay ``datagrams``; wait for the daemon's refusal line; the age it gives."""
    before = len(refusal_ages(daemon))
    replay(sock, datagrams)
    wait_until(lambda: len(refusal_ages(daemon)) > before, 10, "a refusal line")
    time.sleep(0.3)  # the other copies: counted, not logged (checked by the caller)
    assert len(refusal_ages(daemon)) == before + 1, "one line per source and minute"
    return refusal_ages(daemon)[-1]


def counted(daemon: Daemon) -> list[int]:
    """The counts of refusals that were not logged one by one, in log order."""
    return [int(count) for count, _ in COUNTED.findall(daemon.log())]


def listening(ns: NetNS, address: str, port: int = 1229) -> socket.socket:
    """A TCP socket listening in ``ns`` where a replayed request asks to be connected back."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(4)
        return sock

    sock: socket.socket = in_netns(ns, make)
    return sock


def connected_back(sock: socket.socket, timeout: float) -> str | None:
    """The address of a host that connected back within ``timeout`` seconds, or None."""
    sock.settimeout(timeout)
    try:
        peer, (host, _) = sock.accept()
    except TimeoutError:
        return None
    peer.close()
    return str(host)


@pytest.fixture
def sniffer(ns: NetNS) -> Iterator[Sniffer]:
    capture = Sniffer(ns)
    yield capture
    capture.close()


@pytest.fixture
def sender(ns: NetNS) -> Iterator[socket.socket]:
    sock = multicast_sender(ns)
    yield sock
    sock.close()


def c_client_off_with_retransmits(
    ns: NetNS, key: Path, c_fence_xvm: str, daemon: Daemon, sniffer: Sniffer
) -> list[bytes]:
    """``fence_xvm -o off -H vm1`` while the host is held for :data:`HELD_ATTEMPTS`
    retransmit periods; every datagram it sent, in order."""
    argv = [c_fence_xvm, "-k", str(key), "-r", RETRANS_TENTHS, "-t", "20", "-o", "off"]
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        client = subprocess.Popen(
            ns.argv(*argv, "-H", "vm1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sniffer.wait_for(2 * HELD_ATTEMPTS)
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
    out, err = client.communicate(timeout=30)
    assert (client.returncode, out, err) == (0, "", "")
    time.sleep(0.3)  # the last copies reach the packet socket from the loopback's softirq
    sniffer.collect()
    return list(sniffer.seen)


def test_c_client_retransmits_run_once_and_replays_are_refused_for_an_hour(
    ns, tmp_path, key_file, daemons, c_fence_xvm, fake_clock: FakeClock, sniffer, sender
) -> None:
    """(a) ``fence_xvm -o off`` from two addresses, retransmitting while the host is held:
    one backend call. (b) Its datagrams replayed 2 s, 5 min and 1 h later to the same
    running daemon (``replay_window`` 3700 s): refused and logged each time. (c) 1 h later
    after a restart with the state file: refused and logged. Past the window: carried out
    (connected back to), the limit of C mode."""
    ns.ip("addr", "add", f"{SECOND_ADDRESS}/32", "dev", "lo")
    state = tmp_path / "replay.state"
    keys = {"replay_window": str(WINDOW), "replay_state": str(state)}
    daemon = daemons.ours(ns, key_file, wrapper=fake_clock.wrapper(), **keys)

    # (a) the C client's retransmits and per-address copies: one request, run once
    captured = c_client_off_with_retransmits(ns, key_file, c_fence_xvm, daemon, sniffer)
    requests = [FenceRequest.decode(data) for data in captured]
    assert len(captured) >= 2 * HELD_ATTEMPTS
    assert {r.seqno for r in requests} == {requests[0].seqno}, "one run, one seqno"
    sources = {str(IPv4Address(r.address[:4])) for r in requests}
    assert sources == {"127.0.0.1", SECOND_ADDRESS}
    assert len({r.hash for r in requests}) == len(captured), "each copy signed afresh"
    log = daemon.log()
    assert executed(log, "off", "vm1") == 1, log
    assert accepted(log) == 1
    assert log.count("retransmit, dropped") == len(captured) - 1, log
    assert not REFUSED.search(log), "a retransmit taken for a replay"
    pid = daemon.pid

    # (b) replayed seconds, minutes and an hour later, as the running daemon sees time
    time.sleep(2)
    ages = [replay_refused(daemon, sender, captured)]
    fake_clock.set(300)
    ages.append(replay_refused(daemon, sender, captured))
    fake_clock.set(HOUR)
    ages.append(replay_refused(daemon, sender, captured))
    assert 2 <= ages[0] < 30, ages
    assert 300 <= ages[1] < 330, ages
    assert HOUR <= ages[2] < HOUR + 30, ages
    # every other copy refused too: counted as each period ends (the last at the stop)
    assert counted(daemon) == [len(captured) - 1] * 2
    assert (daemon.pid, daemon.process.poll()) == (pid, None), "no restart in between"
    log = daemon.log()
    assert executed(log, "off", "vm1") == 1
    assert accepted(log) == 1

    # (c) an hour later across a restart: the state file remembers
    assert daemon.stop() == 0
    assert counted(daemon) == [len(captured) - 1] * 3
    restarted = daemons.ours(ns, key_file, wrapper=fake_clock.wrapper(), **keys)
    log = restarted.log()
    assert f"replay memory: {len(captured)} signatures loaded from {state}" in log
    age = replay_refused(restarted, sender, captured)
    assert HOUR <= age < HOUR + 60, age

    # past the window, C mode has nothing left to refuse it with: carried out again (the
    # documented limit) -- which also shows the daemon's clock is the fake one
    victim = listening(ns, "0.0.0.0")  # inside the test's namespace
    try:
        assert connected_back(victim, 0.5) is None
        fake_clock.set(WINDOW + 100)
        replay(sender, captured[:1])
        assert connected_back(victim, 10) == "127.0.0.1", "the replay was not carried out"
    finally:
        victim.close()
    assert accepted(restarted.log()) == 1


def test_replays_to_a_second_host_and_to_one_that_never_saw_the_request(
    tmp_path, key_file, daemons, c_fence_xvm, fake_clock: FakeClock
) -> None:
    """Two hosts in the group receive the C client's request; a replay later is refused and
    logged by both. A host started after it, an hour later, never saw it: in C mode it
    carries the replay out (connects back), in protocol v2 it refuses it by its timestamp."""
    memory = 'backends {\n\tmemory {\n\t\tvm = "vm1";\n\t}\n}\n'

    def host(ns: NetNS, interface: str, port: int, protocol: str, *, late: bool) -> Daemon:
        workdir = tmp_path / f"{ns.name}-{port}"
        keys = {
            "key_file": str(key_file),
            "interface": interface,
            "port": str(port),
            "protocol": protocol,
            "replay_state": str(workdir / "replay.state"),
        }
        block = "".join(f'\t\t{name} = "{value}";\n' for name, value in keys.items())
        text = (
            'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "memory";\n}\n'
            f"listeners {{\n\tmulticast {{\n{block}\t}}\n}}\n{memory}"
        )
        wrapper = fake_clock.wrapper() if late else ()
        return daemons.ours_text(ns, text, wrapper=wrapper)

    with bridged_hosts(2) as (client, (first_ns, second_ns)):
        sniffer = Sniffer(client, "br0")
        sender = multicast_sender(client, BRIDGE_CLIENT_IP)
        try:
            # host 1 also serves v2 (for the v2 original below); C requests are C mode there
            first = host(first_ns, "uv1", 1229, "both", late=False)
            second = host(second_ns, "uv2", 1229, "c", late=False)
            done = run(client, c_fence_xvm, "-k", str(key_file), "-o", "status", "-H", "vm1")
            assert (done.returncode, done.stdout) == (0, "Status: ON\n"), done
            c_original = [d for d in sniffer.wait_for(1) if d[1] != V2_HASHTYPE][:1]
            for daemon in (first, second):  # the loser of the connect-back race took it too
                wait_until(lambda d=daemon: accepted(d.log()) == 1, 10, "both hosts")
            v2 = run(
                client, FENCE_XVM, "-k", str(key_file), "-c", "v2", "-o", "status", "-H", "vm1"
            )
            assert (v2.returncode, v2.stdout) == (0, "Status: ON\n"), v2
            v2_original = [d for d in sniffer.wait_for(2) if d[1] == V2_HASHTYPE][:1]
            assert v2_original, "no v2 datagram captured"

            # both hosts received the C original: both refuse it, and say so
            time.sleep(1)
            replay(sender, c_original)
            for daemon in (first, second):
                wait_until(lambda d=daemon: len(refusal_ages(d)) == 1, 10, "a refusal line")
                assert refusal_ages(daemon)[0] >= 1
            assert accepted(second.log()) == 1

            # an hour later, hosts that never saw either request
            fake_clock.set(HOUR)
            late_c = host(second_ns, "uv2", 1230, "c", late=True)
            late_v2 = host(second_ns, "uv2", 1231, "v2", late=True)
            victim = listening(client, BRIDGE_CLIENT_IP)
            try:
                replay(sender, v2_original, port=1231)
                wait_until(lambda: V2_REFUSED.search(late_v2.log()) is not None, 10, "v2 line")
                assert connected_back(victim, 1) is None, "v2 carried a replay out"
                replay(sender, c_original, port=1230)
                assert connected_back(victim, 10) == "198.51.100.12", "C mode refused it"
            finally:
                victim.close()
            found = V2_REFUSED.search(late_v2.log())
            assert found is not None
            assert HOUR <= int(found[1]) < HOUR + 60, "the late daemons' clock is an hour on"
            assert accepted(late_v2.log()) == 0
            assert accepted(late_c.log()) == 1
            assert not REFUSED.search(late_c.log())
        finally:
            sniffer.close()
            sender.close()
