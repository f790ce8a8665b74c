"""The replay attack of issue 21 (A3), against the real daemon and our fence_xvm.

The C protocol does not bind the result byte to the request: a signed datagram the daemon
executes is answered to whichever fence_xvm waits on the port written in it. A captured
``status`` of a running VM, replayed while a guest waits for ``off -H no-such-vm``, can make
that run exit 0 -- "fenced" -- when the daemon executes the replay and its connect-back
arrives first. These tests capture real datagrams on the namespace's ``lo`` (an
``AF_PACKET`` socket, :class:`fence_virt_testinfra.capture.Sniffer`), then replay them
continuously while each victim run waits.

The rule under test: every copy of a request the daemon has received is refused for the
replay window, also after a restart (the state file) and however many copies the guest sent.
What C mode cannot prevent -- a datagram the daemon never received -- is in docs/.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.capture import Sniffer, multicast_sender
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_XVM

pytestmark = pytest.mark.netns

GROUP = ("225.0.0.12", 1229)
#: victim runs per scenario (the issue measured 10)
TRIES = 10


@pytest.fixture
def sniffer(ns: NetNS) -> Iterator[Sniffer]:
    capture = Sniffer(ns)
    yield capture
    capture.close()


def our_xvm(ns: NetNS, key: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ns.argv(FENCE_XVM, "-k", str(key), *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def capture_status(ns: NetNS, key: Path, sniffer: Sniffer) -> list[bytes]:
    """Run ``status -H vm1`` (a running VM: answer 0) and return every datagram it sent."""
    done = our_xvm(ns, key, "-o", "status", "-H", "vm1")
    assert (done.returncode, done.stdout) == (0, "Status: ON\n"), done.stderr
    # the copies reach the packet socket from the loopback's softirq: on a loaded machine
    # that can lag the client's exit, so wait for the first one (bounded), then the rest
    copies: list[bytes] = []
    deadline = time.monotonic() + 5.0
    while not copies and time.monotonic() < deadline:
        time.sleep(0.05)
        copies = sniffer.collect()
    assert copies, "nothing captured"
    time.sleep(0.2)
    return copies + sniffer.collect()


def victim_runs(
    ns: NetNS, key: Path, sender: socket.socket, replays: list[list[bytes]]
) -> list[int]:
    """For each entry of ``replays``: start ``off -H no-such-vm`` and keep replaying those
    datagrams (every millisecond) until the run ends; the runs' exit codes."""
    codes = []
    for datagrams in replays:
        victim = subprocess.Popen(
            ns.argv(FENCE_XVM, "-k", str(key), "-t", "10", "-o", "off", "-H", "no-such-vm"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while victim.poll() is None:
                for data in datagrams:
                    sender.sendto(data, GROUP)
                time.sleep(0.001)
        finally:
            if victim.poll() is None:
                victim.kill()
            codes.append(victim.wait())
    return codes


@pytest.fixture
def sender(ns: NetNS) -> Iterator[socket.socket]:
    sock = multicast_sender(ns)
    yield sock
    sock.close()


def replay_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "replayed copy" in line]


def test_replays_of_served_status_requests_never_answer_a_later_run_after_a_restart(
    ns, tmp_path, key_file, daemons, sniffer, sender
) -> None:
    """Ten status runs are served and captured; the daemon restarts; ten ``off -H
    no-such-vm`` runs each get one captured status replayed at them: none may exit 0."""
    state = tmp_path / "replay.state"
    first = daemons.ours(ns, key_file, replay_state=str(state))
    captured = [capture_status(ns, key_file, sniffer) for _ in range(TRIES)]
    first.stop()
    assert state.stat().st_mode & 0o777 == 0o600
    daemon = daemons.ours(ns, key_file, replay_state=str(state))
    codes = victim_runs(ns, key_file, sender, captured)
    assert codes.count(0) == 0, f"a replayed status answered off -H no-such-vm: {codes}"
    assert codes == [1] * TRIES, codes
    daemon.stop()
    log = daemon.log()
    assert "status vm1 (requester" not in log, "a replayed status was executed"
    assert f"replay memory: {TRIES} signatures loaded from {state}" in log
    lines = replay_lines(log)
    assert len(lines) == 1, "refusals are logged once per source"
    assert re.search(r"from 127\.0\.0\.1:\d+: replayed copy of a request received \d+ s", lines[0])
    counted = re.search(r"refused (\d+) more replayed copies from 127\.0\.0\.1 in the last", log)
    assert counted is not None, "the count of the refusals not logged one by one"
    assert int(counted[1]) >= TRIES - 1


def test_every_copy_of_a_request_is_refused_however_many_addresses_sent_one(
    ns, tmp_path, key_file, daemons, sniffer, sender
) -> None:
    """A guest with 24 addresses sends 24 copies of each request; after C's 10-second
    history has passed, replaying any one of them (C and our old 16-copy limit let copies
    17 and later through) must never answer a later run."""
    for index in range(1, 24):
        ns.ip("addr", "add", f"198.51.100.{index}/32", "dev", "lo")
    daemon = daemons.ours(ns, key_file, replay_state=str(tmp_path / "replay.state"))
    runs = [capture_status(ns, key_file, sniffer) for _ in range(2)]
    assert all(len(copies) >= 24 for copies in runs), [len(c) for c in runs]
    time.sleep(10.5)  # C's duplicate filter has forgotten both requests
    late = [copy for copies in runs for copy in copies[16:]]
    codes = victim_runs(ns, key_file, sender, [[copy] for copy in late[:TRIES]])
    assert codes == [1] * TRIES, f"a replayed copy answered off -H no-such-vm: {codes}"
    assert len(re.findall(r"INFO: status vm1 \(requester ", daemon.log())) == 2
