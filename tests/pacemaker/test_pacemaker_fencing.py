"""Pacemaker fences a real QEMU guest through fence_xvm and fence_virtd (issue 7).

One single-node cluster (corosync + Pacemaker in a sandbox: a network namespace with only
``lo`` and private tmpfs state) and one tiny QEMU guest serve the whole module. Each row of
``CHAINS`` pairs an agent with a daemon (ours or the C suite's) and registers a
``stonith:fence_xvm`` device mapping cluster node ``guest1`` to the guest; the same tests then
check what Pacemaker reports (exit status, fencing history) against the guest's real state.
The C agent with the C daemon is the baseline that proves the harness itself.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from fence_virt_testinfra.c_suite import (
    C_FENCE_XVM,
    MulticastSetup,
    c_fence_virtd,
    have_c_suite,
    write_key,
)
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.ours import missing_daemon_plugins, our_agent, our_fence_virtd
from fence_virt_testinfra.pacemaker import (
    PACEMAKER_TOOLS,
    Cluster,
    FenceResult,
    FenceXvmDevice,
    running_cluster,
)
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.qemu import QEMU_BINARY, QemuGuest, tiny_guest
from fence_virt_testinfra.sandbox import Sandbox
from fence_virt_testinfra.tools import skip_unless_installed, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

NODE = "guest1"
DEVICE = "fence-guest"

CHAINS = [
    pytest.param(("ours", "ours"), id="our-agent-our-daemon"),
    pytest.param(("c", "ours"), id="c-agent-our-daemon", marks=pytest.mark.c_suite),
    pytest.param(("ours", "c"), id="our-agent-c-daemon", marks=pytest.mark.c_suite),
    pytest.param(("c", "c"), id="c-agent-c-daemon", marks=pytest.mark.c_suite),
]


@dataclass
class Chain:
    cluster: Cluster
    guest: QemuGuest
    device: FenceXvmDevice
    daemon: Daemon
    agent: str
    name: str

    def logs(self) -> str:
        return f"--- {self.name} daemon:\n{self.daemon.log()[-3000:]}\n--- fencer:\n" + "\n".join(
            line for line in self.cluster.log().splitlines()[-60:] if "fenced" in line
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    skip_unless_installed(*PACEMAKER_TOOLS)
    with running_cluster("pcmk") as running:
        yield running


@pytest.fixture(scope="module")
def guest(libvirtd: Libvirtd) -> Iterator[QemuGuest]:
    """A tiny QEMU guest on the session's private libvirtd (fixture ``libvirtd``)."""
    skip_unless_installed(QEMU_BINARY)
    name = f"fvt-pcmk-{os.getpid()}"
    uri, pid_dir = libvirtd.qemu_uri, libvirtd.qemu_pid_dir
    with tiny_guest(uri, name, pid_dir=pid_dir) as running:
        yield running


def _skip_missing_pieces(agent: str, daemon: str) -> None:
    if agent == "ours" and our_agent() is None:
        unavailable("our fence_xvm agent (console script fence_xvm, issue 6) is not installed")
    if daemon == "ours" and missing_daemon_plugins():
        unavailable(f"our fence_virtd lacks {', '.join(missing_daemon_plugins())}")
    if "c" in (agent, daemon) and not have_c_suite():
        unavailable("the C fence-virt suite (fence-virt, fence-virtd) is not installed")


def _start_daemon(
    kind: str, box: Sandbox, setup: MulticastSetup
) -> contextlib.AbstractContextManager[Daemon]:
    workdir = box.workdir / f"fence_virtd-{kind}-{setup.port}"
    if kind == "ours":
        return our_fence_virtd(box.ns, workdir, setup)
    return c_fence_virtd(box.ns, workdir, setup)


@pytest.fixture(scope="module", params=CHAINS)
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    agent, daemon_kind = request.param
    _skip_missing_pieces(agent, daemon_kind)
    # only now: a row that skips costs no cluster start
    cluster: Cluster = request.getfixturevalue("cluster")
    guest: QemuGuest = request.getfixturevalue("guest")
    box = cluster.box
    # a port per row: a daemon of an earlier row can never answer for this one
    port = 1229 + [p.values[0] for p in CHAINS].index(request.param)
    key = write_key(box.workdir / f"fence_xvm-{port}.key")
    setup = MulticastSetup(key_file=key, uri=guest.uri, port=port)
    device = FenceXvmDevice(DEVICE, key_file=key, port=port, host_map={NODE: guest.name})
    with contextlib.ExitStack() as stack:
        daemon = stack.enter_context(_start_daemon(daemon_kind, box, setup))
        stack.callback(box.remove_agents)
        agent_program = our_agent()
        if agent == "ours" and agent_program is not None:
            box.install_agent("fence_xvm", agent_program)
        cluster.add_device(device)
        stack.callback(cluster.remove_device, DEVICE)
        name = f"{agent} agent, {daemon_kind} daemon"
        yield Chain(cluster, guest, device, daemon, agent, name)


def _ensure_state(guest: QemuGuest, state: str) -> None:
    if guest.state() != state:
        guest.virsh("start" if state == "running" else "destroy", guest.name)
    assert guest.state() == state


def _assert_success(chain: Chain, result: FenceResult, action: str) -> None:
    context = f"{result.output}\n{chain.logs()}"
    assert result.returncode == 0, context
    assert result.event is not None, f"no history entry for {result.tag}\n{context}"
    assert (result.event.action, result.event.target) == (action, NODE)
    assert result.event.status == "success", context
    assert result.event.delegate == "node1"


def test_device_lists_the_guest_through_the_agent(chain: Chain) -> None:
    targets = chain.cluster.stonith_admin("--list-targets", DEVICE)
    assert targets.returncode == 0, f"{targets.stderr}\n{chain.logs()}"
    assert chain.guest.name in targets.stdout.split()
    assert chain.guest.uuid in targets.stdout.split()
    capable = chain.cluster.stonith_admin("--list", NODE)
    assert capable.returncode == 0, capable.stderr
    assert DEVICE in capable.stdout.split()


def test_query_runs_the_agents_monitor(chain: Chain) -> None:
    """The fencer runs the agent's monitor (with a wrong key it fails: see below)."""
    result = chain.cluster.stonith_admin("--query", DEVICE)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{chain.logs()}"


def test_reboot_restarts_the_guest(chain: Chain) -> None:
    guest = chain.guest
    _ensure_state(guest, "running")
    pid, domid = guest.qemu_pid(), guest.virsh("domid", guest.name).stdout.strip()
    result = chain.cluster.fence("reboot", NODE)
    _assert_success(chain, result, "reboot")
    assert guest.state() == "running"
    # a new QEMU process and a new domain id: the guest really went down and came back
    assert guest.qemu_pid() not in (None, pid)
    assert guest.virsh("domid", guest.name).stdout.strip() != domid


def test_off_destroys_the_guest(chain: Chain) -> None:
    _ensure_state(chain.guest, "running")
    result = chain.cluster.fence("off", NODE)
    _assert_success(chain, result, "off")
    assert chain.guest.state() == "shut off"
    assert chain.guest.qemu_pid() is None


def test_unfence_starts_the_guest(chain: Chain) -> None:
    _ensure_state(chain.guest, "shut off")
    result = chain.cluster.fence("on", NODE)
    _assert_success(chain, result, "on")
    assert chain.guest.state() == "running"
    assert chain.guest.qemu_pid() is not None


def test_wrong_key_fails_and_leaves_the_guest_alone(chain: Chain) -> None:
    guest, cluster = chain.guest, chain.cluster
    _ensure_state(guest, "running")
    pid = guest.qemu_pid()
    wrong = write_key(cluster.box.workdir / "wrong.key")
    # timeout 2: the agent gives up after one 2 s attempt
    cluster.update_device(replace(chain.device, key_file=wrong, timeout=2))
    try:
        query = cluster.stonith_admin("--query", DEVICE)
        result = cluster.fence("reboot", NODE, timeout=30)
    finally:
        cluster.restore_device(chain.device)
    context = f"{result.output}\n{chain.logs()}"
    assert query.returncode != 0, context
    assert result.returncode != 0, context
    assert result.event is not None, context
    assert (result.event.action, result.event.status) == ("reboot", "failed")
    # the failure came from the agent itself, not from a missing device
    ran = re.search(
        rf"Operation 'reboot' \[(\d+)\] targeting {NODE} using {DEVICE} returned [1-9]\d* "
        rf"\| call \d+ from \S*\.{result.tag}\.",
        cluster.log(),
    )
    assert ran is not None, context
    # and from the intended one: only ours explains its time-out with a hint line
    hinted = f"{DEVICE}[{ran.group(1)}] [ Hint:" in cluster.log()
    assert hinted == (chain.agent == "ours"), context
    assert guest.state() == "running"
    assert guest.qemu_pid() == pid


def test_pacemaker_runs_the_intended_agent(chain: Chain) -> None:
    """Ours only inside the sandbox, through the overlay; the host keeps the C symlink."""
    box = chain.cluster.box
    if chain.agent == "ours":
        wrapper = box.run("cat", C_FENCE_XVM).stdout
        assert f"exec {our_agent()} " in wrapper
    else:
        assert box.run("readlink", C_FENCE_XVM).stdout.strip() == "fence_virt"
    assert os.readlink(C_FENCE_XVM) == "fence_virt"
