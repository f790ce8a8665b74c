"""A distributed backend's local side (:class:`LocalVms`): one fencer over every URI, and the
``publish`` callback driven by the refresh interval, lifecycle events and :meth:`changed`, a
burst of changes coalesced into one call.

libvirt is the in-process test driver (``test:///default``, whose state is shared by every
connection of the process while one stays open); an unreachable URI is a UNIX socket nobody
listens on.
"""

from __future__ import annotations

import asyncio
import logging

import libvirt
import pytest

from fence_virt import Target
from fence_virt.errors import BackendError, LocalError
from fence_virt.protocol import HostState, Operation, Response
from fence_virt_libvirt import LocalVms, connect_hypervisors

pytestmark = pytest.mark.timeout(60)

DEFAULT = "test:///default"
#: seconds: longer than any scenario, so that only events and changed() trigger a publish
NEVER = 3600.0


@pytest.fixture
def dead_uri(tmp_path):
    return f"test+unix:///default?socket={tmp_path}/no-libvirtd-here"


class Published:
    """The ``publish`` callback: each call reads the local VMs through the fencer, as a
    backend does, and puts the listing in a queue."""

    def __init__(self) -> None:
        self.local: LocalVms | None = None
        self.calls: asyncio.Queue[list[HostState]] = asyncio.Queue()
        self.fail_next = False

    async def __call__(self) -> None:
        assert self.local is not None
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("publisher bug")
        self.calls.put_nowait(await asyncio.to_thread(self.local.fencer.hostlist))

    async def next(self, timeout: float = 10) -> list[tuple[str, int]]:
        rows = await asyncio.wait_for(self.calls.get(), timeout)
        return [(row.domain, row.state) for row in rows]

    async def none_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(self.calls.get(), seconds)


def destroy(name: str) -> None:
    """Destroy ``name`` on ``test:///default`` through a connection of its own (worker thread)."""
    conn = libvirt.open(DEFAULT)
    try:
        conn.lookupByName(name).destroy()
    finally:
        conn.close()


def local_vms(*uris: str, refresh_interval: float = NEVER) -> tuple[LocalVms, Published]:
    published = Published()
    local = LocalVms(
        "test backend",
        uris,
        reboot_timeout=5.0,
        refresh_interval=refresh_interval,
        publish=published,
    )
    published.local = local
    return local, published


def test_connect_hypervisors_keeps_an_unreachable_uri_for_later(dead_uri, caplog):
    caplog.set_level(logging.WARNING, "fence_virt_libvirt")
    hypervisors = connect_hypervisors([dead_uri, DEFAULT])
    try:
        assert [hv.uri for hv in hypervisors] == [dead_uri, DEFAULT]
        assert any("will retry on each request" in r.getMessage() for r in caplog.records)
    finally:
        for hv in hypervisors:
            hv.close()


def test_connect_hypervisors_fails_when_no_uri_opens(dead_uri):
    with pytest.raises(BackendError, match="could not connect to any hypervisor"):
        connect_hypervisors([dead_uri])


def test_the_fencer_exists_from_open_to_close(run_async):
    async def scenario():
        local, _ = local_vms(DEFAULT)
        with pytest.raises(LocalError, match="test backend used before start"):
            local.fencer  # noqa: B018
        await local.open()
        listing = await asyncio.to_thread(local.fencer.hostlist)
        await local.close()
        with pytest.raises(LocalError):
            local.fencer  # noqa: B018
        await local.close()  # idempotent
        return [(row.domain, row.state) for row in listing]

    assert run_async(scenario) == [("test", libvirt.VIR_DOMAIN_RUNNING)]


def test_open_fails_when_no_uri_opens(run_async, dead_uri):
    async def scenario():
        local, _ = local_vms(dead_uri)
        with pytest.raises(BackendError):
            await local.open()
        with pytest.raises(LocalError):
            local.fencer  # noqa: B018

    run_async(scenario)


def test_publishes_every_refresh_interval(run_async):
    async def scenario():
        local, published = local_vms(DEFAULT, refresh_interval=0.2)
        await local.open()
        await local.watch()
        try:
            await published.next()  # the watch's connection
            loop = asyncio.get_running_loop()
            since = loop.time()
            await published.next()
            await published.next()
            return loop.time() - since
        finally:
            await local.close()

    # two quiet intervals of 0.2 s; generous upper bound for a loaded machine
    assert 0.3 <= run_async(scenario) < 5


def test_a_lifecycle_event_republishes_the_new_state(run_async):
    async def scenario():
        local, published = local_vms(DEFAULT)
        await local.open()
        await local.watch()
        try:
            first = await published.next()  # the watch's connection
            await asyncio.to_thread(destroy, "test")
            after = await published.next()
            await published.none_for(0.5)
            return first, after
        finally:
            await local.close()

    first, after = run_async(scenario)
    assert first == [("test", libvirt.VIR_DOMAIN_RUNNING)]
    assert after == [("test", libvirt.VIR_DOMAIN_SHUTOFF)]


def test_a_burst_of_changes_is_one_publish(run_async):
    async def scenario():
        local, published = local_vms(DEFAULT)
        await local.open()
        local.changed()  # before watch(): remembered, published once the loop runs
        for _ in range(50):
            local.changed()
        await local.watch()
        try:
            await published.next()
            await published.none_for(0.5)
            for _ in range(50):
                local.changed()
            await published.next()
            await published.none_for(0.5)
        finally:
            await local.close()

    run_async(scenario)


def test_a_failing_publish_is_logged_and_the_loop_goes_on(run_async, caplog):
    async def scenario():
        local, published = local_vms(DEFAULT)
        await local.open()
        published.fail_next = True
        local.changed()
        await local.watch()
        try:
            for _ in range(100):
                if not published.fail_next:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            local.changed()
            return await published.next()
        finally:
            await local.close()

    assert run_async(scenario) == [("test", libvirt.VIR_DOMAIN_RUNNING)]
    assert any(
        "test backend: publishing the local VMs failed" in r.getMessage() for r in caplog.records
    )


def test_nothing_is_published_after_stop(run_async):
    async def scenario():
        local, published = local_vms(DEFAULT, refresh_interval=0.1)
        await local.open()
        await local.watch()
        await published.next()
        await local.stop()
        while not published.calls.empty():
            published.calls.get_nowait()
        local.changed()
        await asyncio.to_thread(destroy, "test")
        try:
            await published.none_for(0.5)
        finally:
            await local.close()

    run_async(scenario)


def target(domain: str) -> Target:
    return Target(domain=domain, by_uuid=False, requester="test", seqno=1)


def test_carry_out_fences_through_the_fencer(run_async):
    async def scenario():
        local, _ = local_vms(DEFAULT)
        await local.open()
        try:
            off = await local.carry_out(Operation.OFF, target("test"), "1:1")
            status = await local.carry_out(Operation.STATUS, target("test"), "1:2")
            return off, status
        finally:
            await local.close()

    assert run_async(scenario) == (Response.SUCCESS, Response.OFF)


def test_carry_out_answers_fail_when_the_fencer_raises(run_async, dead_uri, caplog):
    async def scenario():
        # a VM not on the reachable URI might run behind the unreachable one: BackendError
        local, _ = local_vms(DEFAULT, dead_uri)
        await local.open()
        try:
            return await local.carry_out(Operation.OFF, target("elsewhere"), "7:42")
        finally:
            await local.close()

    assert run_async(scenario) is Response.FAIL
    assert any(
        r.levelno == logging.ERROR
        and r.getMessage().startswith("request 7:42: off elsewhere failed")
        for r in caplog.records
    )
