"""libvirt's event loop on asyncio next to worker threads, and one loop after another.

Once an event loop is registered, libvirt watches every remote connection's socket with it
and updates that watch from whichever thread makes an RPC. The first test is the daemon's
case: worker threads fencing through a Fencer while a watch receives events; in asyncio's
debug mode a change made from a worker thread straight on the loop raises, and without it
events arrive late or get lost.
"""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor

import libvirt
import pytest

from fence_virt import Target
from fence_virt.errors import LocalError
from fence_virt.protocol import Response
from fence_virt_libvirt import (
    DomainEvent,
    Fencer,
    Hypervisor,
    LifecycleEvent,
    LifecycleWatch,
    bind_running_loop,
)

pytestmark = pytest.mark.timeout(180)

VMS = 8
REBOOTS = 5


def domain_xml(index: int) -> str:
    return (
        f"<domain type='test'><name>vm{index:02d}</name>"
        f"<uuid>c0c0c0c0-0000-4000-8000-0000000000{index:02d}</uuid>"
        "<memory>65536</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>"
    )


def test_events_arrive_while_worker_threads_fence(private_libvirtd, run_async):
    uri = private_libvirtd.test_uri
    names = [f"vm{i:02d}" for i in range(VMS)]

    async def scenario():
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[LifecycleEvent] = asyncio.Queue()
        watch = LifecycleWatch(uri, events.put_nowait)
        await watch.start()
        setup = libvirt.open(uri)  # keeps the test driver's state; defines the VMs
        fencer = Fencer([Hypervisor(uri)], timeout=30)
        try:
            for i in range(VMS):
                await asyncio.to_thread(lambda i=i: setup.defineXML(domain_xml(i)).create())

            def reboots(name: str) -> list[Response]:
                target = Target(domain=name, by_uuid=False, requester="t", seqno=1)
                return [fencer.reboot(target) for _ in range(REBOOTS)]

            with ThreadPoolExecutor(VMS) as pool:
                answers = await asyncio.gather(
                    *(loop.run_in_executor(pool, reboots, name) for name in names)
                )
            assert answers == [[Response.SUCCESS] * REBOOTS] * VMS
            counted: collections.Counter[tuple[str, DomainEvent | int]] = collections.Counter()
            expected = VMS * (2 + 2 * REBOOTS)  # defined, started, then stopped + started each
            while sum(counted.values()) < expected:
                event = await asyncio.wait_for(events.get(), 10)
                counted[event.name, event.event] += 1
        finally:
            fencer.close()
            setup.close()
            await watch.stop()
        return counted

    counted = run_async(scenario)
    for name in names:
        assert counted[name, DomainEvent.DEFINED] == 1
        assert counted[name, DomainEvent.STARTED] == 1 + REBOOTS
        assert counted[name, DomainEvent.STOPPED] == REBOOTS


def test_a_second_open_loop_is_refused():
    """libvirt allows one event loop per process: a second loop that is still open would
    leave the first one's connections without events, so binding it is an error."""
    first = asyncio.new_event_loop()

    async def bind() -> None:
        bind_running_loop()

    try:
        first.run_until_complete(bind())
        first.run_until_complete(bind())  # the same loop again: fine
        with pytest.raises(LocalError, match="another asyncio loop that is still open"):
            asyncio.run(bind())
    finally:
        first.close()
    asyncio.run(bind())  # the first one is closed now: a new loop may take over


def test_loops_in_turn_and_blocking_use_in_between(private_libvirtd, run_async):
    """Blocking calls work between loops, on a connection the closed loop watched (its watch
    is dropped) and on one opened after it (refused a watch, as if no event loop existed);
    a later loop gets events again."""
    uri = private_libvirtd.test_uri

    async def stopped_event() -> LifecycleEvent:
        events: asyncio.Queue[LifecycleEvent] = asyncio.Queue()
        watch = LifecycleWatch(uri, events.put_nowait)
        await watch.start()
        try:
            await asyncio.to_thread(fencer.off, target)
            return await asyncio.wait_for(events.get(), 10)
        finally:
            await watch.stop()

    keep = libvirt.open(uri)  # keeps the test driver's state between the steps
    fencer = Fencer([Hypervisor(uri)], timeout=30)
    target = Target(domain="test", by_uuid=False, requester="t", seqno=1)
    try:
        assert run_async(stopped_event).event is DomainEvent.STOPPED
        assert fencer.on(target) is Response.SUCCESS  # no loop runs now
        later = Fencer([Hypervisor(uri)], timeout=30)
        try:
            assert later.status(target) is Response.SUCCESS
            assert later.off(target) is Response.SUCCESS
            assert later.on(target) is Response.SUCCESS
        finally:
            later.close()
        assert run_async(stopped_event).event is DomainEvent.STOPPED
        assert fencer.status(target) is Response.OFF
    finally:
        fencer.close()
        keep.close()
