"""The libcpg binding and the group on the asyncio loop, against a real corosync."""

from __future__ import annotations

import asyncio
import os

import pytest

from fence_virt.errors import BackendError
from fence_virt_backend_cpg.group import CpgGroup
from fence_virt_backend_cpg.libcpg import CpgAddress, Reason, quorate
from fence_virt_testinfra.processes import wait_until

pytestmark = pytest.mark.netns


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[int, int, bytes]] = []
        self.changes: list[tuple[list[CpgAddress], list[CpgAddress], list[CpgAddress]]] = []
        self.reconnected = 0

    def group(self, name: str, **kwargs: float) -> CpgGroup:
        return CpgGroup(
            name,
            on_message=lambda n, p, b: self.messages.append((n, p, b)),
            on_membership=lambda m, left, j: self.changes.append((m, left, j)),
            on_reconnected=self._reconnected,
            **kwargs,
        )

    def _reconnected(self) -> None:
        self.reconnected += 1

    async def wait_for(self, count: int, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.005)


def test_join_multicast_and_deliver_in_agreed_order(corosync, cpg_loop):
    seen = Recorder()

    async def body() -> None:
        group = seen.group("fvt-order")
        await group.start()
        try:
            # start() returned: corosync already listed us in the group
            assert group.connected
            assert group.nodeid == 1
            members, _left, joined = seen.changes[0]
            assert (1, os.getpid()) in [(m.nodeid, m.pid) for m in members]
            assert [j.reason for j in joined] == [Reason.JOIN]
            for i in range(50):
                await group.send(f"m{i}".encode(), timeout=5)
            await seen.wait_for(50)
        finally:
            await group.stop()

    cpg_loop.run(body())
    assert [m[2] for m in seen.messages] == [f"m{i}".encode() for i in range(50)]
    assert {(m[0], m[1]) for m in seen.messages} == {(1, os.getpid())}
    assert corosync.group_members("fvt-order") == []


def test_stop_leaves_the_group_cleanly(corosync, cpg_loop):
    seen = Recorder()
    group = seen.group("fvt-leave")
    cpg_loop.run(group.start())
    assert corosync.group_members("fvt-leave") == [(1, os.getpid())]
    cpg_loop.run(group.stop())
    assert corosync.group_members("fvt-leave") == []
    with pytest.raises(BackendError, match="not connected"):
        cpg_loop.run(group.send(b"x", timeout=1))


def test_quorum_of_a_single_node(corosync, cpg_loop):
    async def ask() -> bool:
        return quorate()

    assert cpg_loop.run(ask()) is True


def test_reconnects_after_corosync_restarts(corosync, cpg_loop):
    seen = Recorder()
    group = seen.group("fvt-restart", retry_interval=0.2)
    cpg_loop.run(group.start())
    try:
        corosync.kill()
        wait_until(lambda: not group.connected, 10, "the group to notice corosync is gone")
        with pytest.raises(BackendError):
            cpg_loop.run(group.send(b"lost", timeout=1))
        corosync.start()
        wait_until(lambda: seen.reconnected == 1, 30, "the group to rejoin", interval=0.05)
        assert corosync.group_members("fvt-restart") == [(1, os.getpid())]
        cpg_loop.run(group.send(b"back", timeout=5))
        cpg_loop.run(seen.wait_for(1))
        assert seen.messages[-1][2] == b"back"
    finally:
        cpg_loop.run(group.stop())


def test_start_without_corosync_is_a_backend_error(ns_loop):
    group = Recorder().group("fvt-none")
    with pytest.raises(BackendError, match="cpg_initialize failed"):
        ns_loop.run(group.start())
    assert not group.connected
