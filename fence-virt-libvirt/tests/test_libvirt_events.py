"""Lifecycle events on the asyncio loop: typed records from libvirt's test driver (in-process
and through a hand-started libvirtd), a watch that outlives libvirtd restarts, and stop()
that really deregisters (libvirtd's own client list, read with ``virt-admin``, is the witness).

Every scenario runs on a loop in asyncio debug mode; libvirt calls that block run in worker
threads, as a daemon's would.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess

import libvirt
import pytest

from fence_virt.errors import LocalError
from fence_virt_libvirt import (
    DomainEvent,
    HypervisorUnreachable,
    LifecycleEvent,
    LifecycleWatch,
)

pytestmark = pytest.mark.timeout(120)

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
EXTRA_UUID = "7e57a11e-0000-4000-8000-0000000000e1"
EXTRA_XML = (
    f"<domain type='test'><name>extra</name><uuid>{EXTRA_UUID}</uuid>"
    "<memory>65536</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>"
)
#: seconds between reconnect attempts in these tests (the default is 5)
RETRY = 0.2


class Seen:
    """What a watch delivered: events and connections, each in an asyncio queue."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[LifecycleEvent] = asyncio.Queue()
        self.connections: asyncio.Queue[str] = asyncio.Queue()

    def watch(self, uri: str, **kwargs: object) -> LifecycleWatch:
        return LifecycleWatch(
            uri, self.events.put_nowait, on_connected=self.connections.put_nowait, **kwargs
        )

    async def next(self, timeout: float = 10) -> tuple[str, DomainEvent | int, int]:
        event = await asyncio.wait_for(self.events.get(), timeout)
        return event.name, event.event, event.detail

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(self.events.get(), seconds)


def on_domain(uri: str, action: str, name: str = "test") -> None:
    """Open ``uri``, call ``action`` (a virDomain method) on ``name``, close (worker thread)."""
    conn = libvirt.open(uri)
    try:
        getattr(conn.lookupByName(name), action)()
    finally:
        conn.close()


async def clients_become(libvirtd, count: int, timeout: float = 10) -> None:
    """Wait until libvirtd lists ``count`` clients (it notices a closed socket a little
    after the client's close() returned)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (now := len(await asyncio.to_thread(clients, libvirtd))) != count:
        assert asyncio.get_running_loop().time() < deadline, f"{now} clients, not {count}"
        await asyncio.sleep(0.05)


def clients(libvirtd) -> list[str]:
    """libvirtd's connected clients, as ``virt-admin srv-clients-list`` prints them."""
    admin = f"libvirtd:///system?socket={libvirtd.socket_dir}/libvirt-admin-sock"
    listing = subprocess.run(
        ["virt-admin", "-c", admin, "srv-clients-list", "libvirtd"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [line for line in listing.splitlines()[2:] if line.strip()]


# test:///default in-process ----------------------------------------------------------------


def test_each_lifecycle_change_arrives_as_a_typed_record(run_async):
    async def scenario():
        seen = Seen()
        watch = seen.watch("test:///default")
        await watch.start()
        assert await seen.connections.get() == "test:///default"
        inspect = libvirt.open("test:///default")  # the watch keeps the shared state alive
        try:
            dom = inspect.lookupByName("test")
            for action in ("destroy", "create", "suspend", "resume"):
                await asyncio.to_thread(getattr(dom, action))
            extra = await asyncio.to_thread(inspect.defineXML, EXTRA_XML)
            await asyncio.to_thread(extra.undefine)
            first = await asyncio.wait_for(seen.events.get(), 10)
            rest = [await seen.next() for _ in range(5)]
        finally:
            inspect.close()
            await watch.stop()
        return first, rest

    first, rest = run_async(scenario)
    assert first == LifecycleEvent(
        uri="test:///default",
        name="test",
        uuid=TEST_UUID,
        event=DomainEvent.STOPPED,
        detail=libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED,
    )
    assert rest == [
        ("test", DomainEvent.STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED),
        ("test", DomainEvent.SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED),
        ("test", DomainEvent.RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED),
        ("extra", DomainEvent.DEFINED, libvirt.VIR_DOMAIN_EVENT_DEFINED_ADDED),
        ("extra", DomainEvent.UNDEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED),
    ]


def test_a_failing_callback_is_logged_and_the_watch_goes_on(run_async, caplog):
    async def scenario():
        delivered: list[LifecycleEvent] = []

        def on_event(event: LifecycleEvent) -> None:
            delivered.append(event)
            if len(delivered) == 1:
                raise ValueError("consumer bug")

        watch = LifecycleWatch("test:///default", on_event)
        await watch.start()
        inspect = libvirt.open("test:///default")
        try:
            dom = inspect.lookupByName("test")
            await asyncio.to_thread(dom.destroy)
            await asyncio.to_thread(dom.create)
            for _ in range(100):
                if len(delivered) == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            inspect.close()
            await watch.stop()
        return [e.event for e in delivered]

    assert run_async(scenario) == [DomainEvent.STOPPED, DomainEvent.STARTED]
    assert "on_event failed" in caplog.text
    assert "ValueError: consumer bug" in caplog.text


def test_start_twice_is_a_local_error(run_async):
    async def scenario():
        watch = LifecycleWatch("test:///default", lambda _event: None)
        await watch.start()
        try:
            with pytest.raises(LocalError, match="start"):
                await watch.start()
        finally:
            await watch.stop()
        await watch.stop()  # idempotent

    run_async(scenario)


def test_start_fails_at_once_when_the_uri_cannot_be_opened(run_async, tmp_path):
    dead = f"test+unix:///default?socket={tmp_path}/no-libvirtd-here"

    async def scenario():
        watch = LifecycleWatch(dead, lambda _event: None)
        with pytest.raises(HypervisorUnreachable, match="no-libvirtd-here"):
            await watch.start()
        assert not watch.connected
        await watch.stop()

    run_async(scenario)


# through a hand-started libvirtd -----------------------------------------------------------


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_the_watch_reconnects_and_registers_again_after_a_libvirtd_restart(
    private_libvirtd, run_async, caplog, how
):
    """While libvirtd is down the watch retries every RETRY seconds (one warning, not one
    per attempt); once it is back the watch re-registers, says so through on_connected, and
    events flow again. Events while it was down are lost; on_connected is the cue to re-read."""
    caplog.set_level(logging.INFO, logger="fence_virt_libvirt")
    uri = private_libvirtd.test_uri

    async def scenario():
        seen = Seen()
        watch = seen.watch(uri, retry_interval=RETRY)
        await watch.start()
        try:
            await seen.connections.get()
            await asyncio.to_thread(on_domain, uri, "destroy")
            assert await seen.next() == ("test", DomainEvent.STOPPED, 1)

            await asyncio.to_thread(getattr(private_libvirtd, how))
            await asyncio.sleep(10 * RETRY)  # several failed attempts
            assert not watch.connected
            assert seen.connections.empty()

            await asyncio.to_thread(private_libvirtd.start)
            assert await asyncio.wait_for(seen.connections.get(), 30) == uri
            assert watch.connected
            await clients_become(private_libvirtd, 1)  # the old connection is not kept
            await asyncio.to_thread(on_domain, uri, "destroy")  # a fresh test driver: running
            assert await seen.next() == ("test", DomainEvent.STOPPED, 1)
        finally:
            await watch.stop()

    run_async(scenario)
    assert caplog.text.count(f"lifecycle events from {uri} lost") == 1
    assert caplog.text.count("retrying every 0.2 s") == 1
    assert f"lifecycle events from {uri} again" in caplog.text


def test_stop_deregisters_and_closes_the_connection(private_libvirtd, run_async):
    """A registered event callback holds a reference on its connection: without
    deregistration, closing would leave libvirtd's client connected."""
    uri = private_libvirtd.test_uri

    async def scenario():
        seen = Seen()
        keep = libvirt.open(uri)  # keeps the test driver's state between connections
        try:
            watch = seen.watch(uri)
            await watch.start()
            await clients_become(private_libvirtd, 2)
            await watch.stop()
            await clients_become(private_libvirtd, 1)
            await asyncio.to_thread(on_domain, uri, "destroy")
            await seen.nothing_for(0.5)
            assert not watch.connected
        finally:
            keep.close()

    run_async(scenario)


def test_stop_while_libvirtd_is_down_ends_the_retries(private_libvirtd, run_async, caplog):
    caplog.set_level(logging.DEBUG, logger="fence_virt_libvirt")

    async def scenario():
        seen = Seen()
        watch = seen.watch(private_libvirtd.test_uri, retry_interval=RETRY)
        await watch.start()
        await asyncio.to_thread(private_libvirtd.stop)
        await asyncio.sleep(3 * RETRY)
        await asyncio.wait_for(watch.stop(), 10)
        attempts = caplog.text.count("cannot connect to")
        await asyncio.sleep(3 * RETRY)
        assert caplog.text.count("cannot connect to") == attempts  # no attempt after stop()
        assert attempts >= 2

    run_async(scenario)
