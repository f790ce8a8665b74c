"""Discovery of guest sockets (c-suite-spec §7.1): C's directory rule, the domain-XML rule,
and GuestSocketWatch following domains through lifecycle events -- on libvirt's test driver
in-process (test:///default, shared while a connection is open) and through a hand-started
libvirtd that the test restarts."""

from __future__ import annotations

import asyncio
import logging

import libvirt
import pytest

from fence_virt.errors import BackendError
from fence_virt_libvirt import (
    DeviceKind,
    GuestSocket,
    GuestSocketWatch,
    HypervisorUnreachable,
    in_directory,
    socket_paths,
)
from fence_virt_testinfra.channels import socket_domain_xml

pytestmark = pytest.mark.timeout(120)

#: seconds between reconnect attempts in these tests (the default is 5)
RETRY = 0.2
UUID1 = "5e71a100-0000-4000-8000-000000000001"
UUID2 = "5e71a100-0000-4000-8000-000000000002"
UUID3 = "5e71a100-0000-4000-8000-000000000003"


# ---------------------------------------------------------------------------------------------
# C's directory rule


@pytest.mark.parametrize(
    ("directory", "path", "inside"),
    [
        ("/var/run/fence", "/var/run/fence/vm1.sock", True),
        ("/var/run/fence/", "/var/run/fence/vm1.sock", True),  # trailing slashes of the dir
        ("var/run/fence", "/var/run/fence/vm1.sock", True),  # leading slashes of both
        ("/var/run/fence", "var/run/fence/vm1.sock", True),
        ("/var/run/fence", "/var/run/fence//vm1.sock", True),  # a run of slashes at the end
        ("/var/run/fence", "/var/run/fence/", True),  # C's quirk: the parent text matches
        ("/var/run/fence", "/var/run//fence/vm1.sock", False),  # no normalisation inside
        ("/var/run/fence", "/var/run/./fence/vm1.sock", False),
        ("/var/run/fence", "/var/run/fence/../fence/vm1.sock", False),
        ("/var/run/fence", "/var/run/fence/sub/vm1.sock", False),  # no subdirectories
        ("/var/run/fence", "/var/run/fence2/vm1.sock", False),
        ("/var/run/fence", "/var/run/fencevm1.sock", False),
        ("/var/run/fence", "/var/run/Fence/vm1.sock", False),  # case counts
        ("/var/run/fence", "/var/run/fence", False),
        ("/var/run/fence", "vm1.sock", False),
        ("/ab", "/ab/vm1.sock", True),
        ("/a", "/a/vm1.sock", False),  # C's quirk: a one-character directory never matches
        ("/", "/vm1.sock", False),
        ("", "/var/vm1.sock", False),
        ("/var", "", False),
    ],
)
def test_in_directory_follows_c(directory: str, path: str, inside: bool) -> None:
    assert in_directory(directory, path) is inside


# ---------------------------------------------------------------------------------------------
# the domain XML rule

XML = """<domain type='kvm'>
  <name>vm1</name>
  <devices>
    <serial type='unix'><source mode='bind' path='/run/fence/vm1.sock'/><target port='1'/></serial>
    <serial type='unix'><source mode='connect' path='/run/fence/out.sock'/></serial>
    <serial type='pty'><source path='/dev/pts/4'/></serial>
    <serial type='UNIX'><source mode='bind' path='/run/fence/upper.sock'/></serial>
    <serial type='unix'><source mode='bind'/></serial>
    <serial type='unix'><source path='/run/fence/nomode.sock'/></serial>
    <serial type='unix'><source mode='bind' path='/elsewhere/vm1.sock'/></serial>
    <serial type='unix'><source mode='bind' path='/run/fence/vm1.sock'/></serial>
    <console type='unix'><source mode='bind' path='/run/fence/console.sock'/></console>
    <channel type='unix'><source mode='bind' path='/run/fence/vm1-chan.sock'/>
      <target type='guestfwd' address='10.0.2.179' port='1229'/></channel>
    <channel type='unix'><source mode='bind' path='/run/fence/vm1-virtio.sock'/>
      <target type='virtio' name='org.clusterlabs.fence_virt'/></channel>
    <devices><serial type='unix'><source mode='bind' path='/run/fence/nested.sock'/></serial>
    </devices>
  </devices>
  <devices>
    <serial type='unix'><source mode='bind' path='/run/fence/second.sock'/></serial>
  </devices>
</domain>
"""


def test_serial_devices_in_the_directory() -> None:
    assert socket_paths(XML, DeviceKind.SERIAL, "/run/fence") == [
        "/run/fence/vm1.sock",  # once, though listed twice
        "/run/fence/second.sock",  # every <devices> child of <domain>
    ]


def test_without_a_directory_every_bound_unix_serial_counts() -> None:
    assert socket_paths(XML, DeviceKind.SERIAL, None) == [
        "/run/fence/vm1.sock",
        "/elsewhere/vm1.sock",
        "/run/fence/second.sock",
    ]


def test_channel_devices() -> None:
    assert socket_paths(XML, DeviceKind.CHANNEL, "/run/fence") == [
        "/run/fence/vm1-chan.sock",
        "/run/fence/vm1-virtio.sock",
    ]


def test_xml_that_is_not_a_domain_is_an_error() -> None:
    with pytest.raises(BackendError, match="does not parse"):
        socket_paths("<domain>", DeviceKind.SERIAL, None)
    with pytest.raises(BackendError, match="<network>"):
        socket_paths("<network/>", DeviceKind.SERIAL, None)


# ---------------------------------------------------------------------------------------------
# GuestSocketWatch


class Seen:
    """What a watch reported, in order."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[tuple[str, GuestSocket]] = asyncio.Queue()

    def watch(self, uri: str, kind: DeviceKind, directory: str | None) -> GuestSocketWatch:
        return GuestSocketWatch(
            uri,
            kind,
            directory,
            on_added=lambda s: self.changes.put_nowait(("added", s)),
            on_removed=lambda s: self.changes.put_nowait(("removed", s)),
            retry_interval=RETRY,
        )

    async def next(self, timeout: float = 10) -> tuple[str, GuestSocket]:
        return await asyncio.wait_for(self.changes.get(), timeout)

    def drain(self) -> list[tuple[str, GuestSocket]]:
        found = []
        while not self.changes.empty():
            found.append(self.changes.get_nowait())
        return found


def guest_xml(name: str, uuid: str, directory: str) -> str:
    return socket_domain_xml(
        name,
        uuid,
        serial=[f"{directory}/{name}.sock", f"/elsewhere/{name}.sock"],
        channels=[f"{directory}/{name}-chan.sock"],
    )


def in_thread(call, *args):
    return asyncio.to_thread(call, *args)


def test_the_running_domains_are_read_at_start(run_async) -> None:
    """Running domains with sockets are found; a defined domain that is shut off is not."""
    directory = "/run/fence-test"

    async def scenario():
        conn = libvirt.open("test:///default")  # keeps the shared state alive
        try:
            await in_thread(conn.createXML, guest_xml("g1", UUID1, directory), 0)
            await in_thread(conn.defineXML, guest_xml("g2", UUID2, directory))  # shut off
            found = {}
            for kind in DeviceKind:
                seen = Seen()
                watch = seen.watch("test:///default", kind, directory)
                await watch.start()
                found[kind] = (watch.sockets, seen.drain())
                await watch.stop()
            await in_thread(conn.lookupByName("g2").undefine)
        finally:
            conn.close()
        return found

    found = run_async(scenario)
    serial = GuestSocket(UUID1, "g1", f"{directory}/g1.sock")
    channel = GuestSocket(UUID1, "g1", f"{directory}/g1-chan.sock")
    assert found[DeviceKind.SERIAL] == ({serial}, [("added", serial)])
    assert found[DeviceKind.CHANNEL] == ({channel}, [("added", channel)])


def test_domains_started_and_stopped_later_are_followed_at_once(run_async) -> None:
    """From events, not polling: each change is reported well within a second."""
    directory = "/run/fence-test"

    async def scenario():
        conn = libvirt.open("test:///default")
        seen = Seen()
        watch = seen.watch("test:///default", DeviceKind.SERIAL, directory)
        loop = asyncio.get_running_loop()
        try:
            await watch.start()
            assert watch.sockets == set()
            took = []
            start = loop.time()
            dom = await in_thread(conn.createXML, guest_xml("g3", UUID3, directory), 0)
            added = await seen.next()
            took.append(loop.time() - start)
            start = loop.time()
            await in_thread(dom.destroy)
            removed = await seen.next()
            took.append(loop.time() - start)
            return added, removed, took, watch.sockets
        finally:
            await watch.stop()
            conn.close()

    added, removed, took, left = run_async(scenario)
    socket = GuestSocket(UUID3, "g3", f"{directory}/g3.sock")
    assert added == ("added", socket)
    assert removed == ("removed", socket)
    assert left == set()
    assert max(took) < 1.0, took


def test_a_failing_callback_is_logged_and_the_watch_goes_on(run_async, caplog) -> None:
    directory = "/run/fence-test"

    async def scenario():
        conn = libvirt.open("test:///default")
        removed: list[GuestSocket] = []

        def refuse(_socket: GuestSocket) -> None:
            raise RuntimeError("consumer bug")

        watch = GuestSocketWatch(
            "test:///default",
            DeviceKind.SERIAL,
            directory,
            on_added=refuse,
            on_removed=removed.append,
        )
        try:
            await watch.start()
            dom = await in_thread(conn.createXML, guest_xml("g1", UUID1, directory), 0)
            await asyncio.sleep(0.2)
            await watch.settled()
            await in_thread(dom.destroy)
            for _ in range(100):
                if removed:
                    break
                await asyncio.sleep(0.05)
            return removed
        finally:
            await watch.stop()
            conn.close()

    assert run_async(scenario) == [GuestSocket(UUID1, "g1", f"{directory}/g1.sock")]
    assert "RuntimeError: consumer bug" in caplog.text


def test_start_fails_when_libvirt_cannot_be_reached(run_async, tmp_path) -> None:
    dead = f"test+unix:///default?socket={tmp_path}/none"

    async def scenario():
        watch = Seen().watch(dead, DeviceKind.SERIAL, None)
        with pytest.raises(HypervisorUnreachable):
            await watch.start()
        await watch.stop()

    run_async(scenario)


def test_after_a_libvirtd_restart_domains_are_read_again_and_new_ones_followed(
    private_libvirtd, run_async, caplog
) -> None:
    """C's event thread ends with the connection: it never sees another domain start. The
    watch reconnects, reads the domains again (libvirtd's fresh test driver has none of the
    old ones: their sockets are released) and follows new ones."""
    caplog.set_level(logging.INFO, logger="fence_virt_libvirt")
    uri = private_libvirtd.test_uri
    directory = "/run/fence-test"

    async def scenario():
        seen = Seen()
        watch = seen.watch(uri, DeviceKind.SERIAL, directory)
        try:
            conn = await in_thread(libvirt.open, uri)
            await in_thread(conn.createXML, guest_xml("before", UUID1, directory), 0)
            await watch.start()
            first = seen.drain()

            await in_thread(private_libvirtd.stop)
            await asyncio.sleep(5 * RETRY)
            assert not watch.connected
            await in_thread(private_libvirtd.start)
            released = await seen.next(30)  # the re-read after the reconnect
            assert watch.connected

            conn = await in_thread(libvirt.open, uri)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await in_thread(conn.createXML, guest_xml("after", UUID2, directory), 0)
            added = await seen.next()
            took = loop.time() - start
            await in_thread(conn.close)
            return first, released, added, took
        finally:
            await watch.stop()

    first, released, added, took = run_async(scenario)
    before = GuestSocket(UUID1, "before", f"{directory}/before.sock")
    assert first == [("added", before)]
    assert released == ("removed", before)
    assert added == ("added", GuestSocket(UUID2, "after", f"{directory}/after.sock"))
    assert took < 1.0
    assert f"lifecycle events from {uri} again" in caplog.text
