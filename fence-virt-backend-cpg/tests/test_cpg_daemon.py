"""Our ``fence_virtd`` with the cpg backend on one real corosync node (loopback, in its own
namespace), served to the C ``fence_xvm`` and to ours over the multicast listener; 100
consecutive ``fence_virtd`` processes that each join the group, answer through it and leave
it cleanly; the legacy ``name_mode`` location; corosync restarts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon import Daemon as FenceVirtd
from fence_virt.testing.memory import ask
from fence_virt_backend_cpg.group import CpgGroup
from fence_virt_backend_cpg.libcpg import CpgAddress, Reason
from fence_virt_testinfra.c_suite import (
    TEST_NODE_DOMAINS,
    MulticastSetup,
    run_c_fence_xvm,
    run_in,
    write_key,
    write_test_node,
)
from fence_virt_testinfra.corosync import CorosyncNode
from fence_virt_testinfra.ours import FENCE_XVM, STARTED, fence_virtd_argv
from fence_virt_testinfra.processes import Daemon, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

GROUP = "fence-agents"
VM1_UUID = TEST_NODE_DOMAINS[0][1]


def cpg_config(setup: MulticastSetup, extra: str = "") -> str:
    """The multicast + libvirt config of the C suite's recipes, with the cpg backend."""
    text = setup.config_text().replace('backend = "libvirt";', 'backend = "cpg";')
    return text.replace("\tlibvirt {\n", f'\tcpg {{\n\t\trequest_timeout = "10";\n{extra}')


@pytest.fixture
def served(corosync: CorosyncNode, tmp_path: Path) -> Iterator[tuple[CorosyncNode, Path, Daemon]]:
    """Our fence_virtd (multicast on lo, cpg backend) on the corosync node, and its key."""
    key = write_key(tmp_path / "fence_xvm.key")
    setup = MulticastSetup(key_file=key, uri=write_test_node(tmp_path / "node.xml"))
    config = tmp_path / "fence_virt.conf"
    config.write_text(cpg_config(setup))
    config.chmod(0o600)
    argv = fence_virtd_argv(config, tmp_path / "fvd.pid", debug=4)
    daemon = Daemon(corosync.argv(*argv), tmp_path / "fence_virtd.log")
    try:
        daemon.wait_for_log(STARTED, 30)
        yield corosync, key, daemon
    finally:
        daemon.stop()


def agent_run(which: str, node: CorosyncNode, key: Path, *args: str) -> tuple[int, str]:
    if which == "C":
        done = run_c_fence_xvm(node.ns, key, "-t", "10", *args)
        return done.returncode, done.stdout
    ours = run_in(node.ns, [FENCE_XVM, "-k", str(key), "-t", "10", *args])
    return ours.returncode, ours.stdout.decode(errors="replace")


@pytest.mark.parametrize("agent", ["C", "ours"])
def test_every_operation_through_the_cpg_backend(served, agent):
    node, key, daemon = served

    def rc(*args: str) -> int:
        return agent_run(agent, node, key, *args)[0]

    code, listing = agent_run(agent, node, key, "-o", "list")
    assert code == 0
    assert [line.split()[0] for line in listing.splitlines()] == [d[0] for d in TEST_NODE_DOMAINS]
    assert rc("-o", "status", "-H", "vm1") == 0
    assert rc("-o", "off", "-H", "vm1") == 0
    assert rc("-o", "status", "-H", "vm1") == 2
    assert rc("-o", "on", "-H", "vm1") == 0
    assert rc("-o", "reboot", "-H", "vm1") == 0
    assert rc("-o", "status", "-H", VM1_UUID) == 0
    assert rc("-o", "status", "-H", "vm2") == 2
    assert rc("-o", "monitor") == 0
    # C's cpg answers OFF for an unknown VM's status and success for its off: never here
    assert rc("-o", "status", "-H", "nosuch") == 1
    assert rc("-o", "off", "-H", "nosuch") == 1
    log = daemon.log()
    assert "joined CPG group fence-agents as node 1" in log
    assert "request 1:2: off vm1 for 127.0.0.1" in log
    assert "request 1:2: off vm1: here (state 1); carrying it out" in log
    assert "off nosuch: no member has reported this VM: FAIL" in log
    assert node.group_members(GROUP) == [(1, daemon.pid)]
    # SIGTERM: a clean exit that leaves the group (no member left behind)
    assert daemon.stop() == 0
    assert node.group_members(GROUP) == []


class GroupWatcher:
    """A plain member of a CPG group that records who joins and leaves, and why."""

    def __init__(self) -> None:
        self.changes: list[tuple[int, Reason]] = []

    def group(self, name: str) -> CpgGroup:
        return CpgGroup(name, on_message=lambda _n, _p, _b: None, on_membership=self._changed)

    def _changed(
        self, _members: list[CpgAddress], left: list[CpgAddress], joined: list[CpgAddress]
    ) -> None:
        self.changes += [(a.pid, Reason(a.reason)) for a in (*joined, *left)]

    def saw(self, pid: int, reason: Reason) -> bool:
        return (pid, reason) in self.changes


def test_100_consecutive_fence_virtd_processes_join_answer_and_leave(corosync, cpg_loop, tmp_path):
    """100 real ``fence_virtd -F`` processes, one after the other: each is started only once
    corosync confirmed its join, so its first request already travels through the group and
    is answered; SIGTERM then leaves the group cleanly (a LEAVE, not a vanished process) and
    exits 0. C: about half of all starts leave a daemon whose dispatch thread died
    (recipes §5d). A start costs about 0.5 s on an idle machine (the whole test about 60 s),
    some 0.4 s of it importing the daemon, its plugins and libvirt; joining the group,
    answering and leaving take milliseconds."""
    uri = write_test_node(tmp_path / "node.xml")
    sock = tmp_path / "m.sock"
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        'fence_virtd { listener = "memory"; backend = "cpg"; }\n'
        f'listeners {{ memory {{ socket = "{sock}"; }} }}\n'
        f'backends {{ cpg {{ uri = "{uri}"; group = "fvt-starts"; request_timeout = "5"; }} }}\n'
    )
    config.chmod(0o600)
    argv = corosync.argv(*fence_virtd_argv(config, tmp_path / "fence_virtd.pid"))
    watcher = GroupWatcher()
    watching = watcher.group("fvt-starts")
    cpg_loop.run(watching.start())
    answers, statuses = [], []
    try:
        for start in range(100):
            daemon = Daemon(argv, tmp_path / f"fence_virtd-{start}.log")
            try:
                daemon.wait_for_log(STARTED, 30)
                # started means joined: corosync lists it before any request is made
                assert (1, daemon.pid) in corosync.group_members("fvt-starts")
                answers += ask(sock, "status vm1", timeout=10)
            finally:
                statuses.append(daemon.stop())
            wait_until(
                lambda pid=daemon.pid: (
                    watcher.saw(pid, Reason.LEAVE) or watcher.saw(pid, Reason.PROCDOWN)
                ),
                10,
                f"fence_virtd {daemon.pid} to leave the group",
            )
            assert watcher.saw(daemon.pid, Reason.LEAVE), daemon.log()
    finally:
        cpg_loop.run(watching.stop())
    assert answers == ["0"] * 100
    assert statuses == [0] * 100
    assert corosync.group_members("fvt-starts") == []


@pytest.mark.parametrize("place", ["cpg", "fence_virtd"])
def test_uuid_name_mode_refuses_names(corosync, cpg_loop, tmp_path, place):
    """name_mode = "uuid", as C, in the cpg block or in its legacy place in the fence_virtd
    block: VMs are named by UUID; a name is refused (FAIL), where C would find nothing and its
    highest node answer success."""
    uri = write_test_node(tmp_path / "node.xml")
    sock = tmp_path / "m.sock"
    legacy, block = (
        ('name_mode = "uuid";', "") if place == "fence_virtd" else ("", 'name_mode = "uuid";')
    )
    text = (
        f'fence_virtd {{ listener = "memory"; backend = "cpg"; {legacy} }}\n'
        f'listeners {{ memory {{ socket = "{sock}"; }} }}\n'
        f'backends {{ cpg {{ uri = "{uri}"; {block} request_timeout = "5"; }} }}\n'
    )
    daemon = FenceVirtd.from_config(parse_text(text))

    async def run() -> list[str]:
        async with daemon:
            return await asyncio.to_thread(
                ask,
                sock,
                "status vm1",
                f"status {VM1_UUID}",
                "off vm1",
                f"off {VM1_UUID}",
                f"status {VM1_UUID}",
            )

    assert cpg_loop.run(run(), timeout=60) == ["1", "0", "1", "0", "2"]


def test_the_backend_survives_a_corosync_restart(corosync, cpg_loop, tmp_path):
    """Without corosync a request fails at once (C: the same, but a request already waiting
    hangs); once corosync is back the backend rejoins and publishes its VMs again."""
    uri = write_test_node(tmp_path / "node.xml")
    sock = tmp_path / "m.sock"
    text = (
        'fence_virtd { listener = "memory"; backend = "cpg"; }\n'
        f'listeners {{ memory {{ socket = "{sock}"; }} }}\n'
        f'backends {{ cpg {{ uri = "{uri}"; group = "fvt-restart"; request_timeout = "5"; }} }}\n'
    )
    daemon = FenceVirtd.from_config(parse_text(text))

    async def run() -> list[str]:
        async with daemon:
            answers = await asyncio.to_thread(ask, sock, "status vm1")
            await asyncio.to_thread(corosync.kill)
            await asyncio.sleep(0.5)
            answers += await asyncio.to_thread(ask, sock, "status vm1")
            await asyncio.to_thread(corosync.start)
            async with asyncio.timeout(30):
                while corosync.group_members("fvt-restart") != [(1, os.getpid())]:
                    await asyncio.sleep(0.1)
            answers += await asyncio.to_thread(ask, sock, "off vm1", "status vm1")
            return answers

    assert cpg_loop.run(run(), timeout=90) == ["0", "1", "0", "2"]
