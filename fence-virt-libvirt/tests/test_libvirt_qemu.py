"""A real QEMU guest through a hand-started libvirtd (qemu:///system): off really stops the
QEMU process, on starts one, reboot replaces it, status follows; the guest's lifecycle events
arrive on the asyncio loop and its live XML can be read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import libvirt
import pytest

from fence_virt import Target
from fence_virt.errors import BackendError
from fence_virt.protocol import Response
from fence_virt_libvirt import DomainEvent, Hypervisor, LifecycleEvent, LifecycleWatch, domain_xml

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(180)]

SHUTOFF = 5
STOPPED, STARTED = DomainEvent.STOPPED, DomainEvent.STARTED


def alive(pid):
    return Path(f"/proc/{pid}").exists()


def test_off_status_on(qemu_guest, start_fencer, fence):
    fencer = start_fencer(qemu_guest.uri)
    name, first = qemu_guest.name, qemu_guest.qemu_pid()
    assert first is not None
    assert fence(fencer, "status", name) is Response.SUCCESS

    assert fence(fencer, "off", name) is Response.SUCCESS
    assert qemu_guest.state() == "shut off"
    assert not alive(first)
    assert fence(fencer, "status", name) is Response.OFF
    listed = {s.domain: s for s in fencer.hostlist()}
    assert (listed[name].uuid, listed[name].state) == (qemu_guest.uuid, SHUTOFF)

    assert fence(fencer, "on", qemu_guest.uuid, by_uuid=True) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert qemu_guest.qemu_pid() not in (None, first)
    assert fence(fencer, "status", name) is Response.SUCCESS
    assert fencer.devstatus() is Response.SUCCESS


def test_reboot_replaces_the_qemu_process(qemu_guest, start_fencer, fence):
    fencer = start_fencer(qemu_guest.uri)
    first, first_id = qemu_guest.qemu_pid(), qemu_guest.virsh("domid", qemu_guest.name).stdout
    assert fence(fencer, "reboot", qemu_guest.name) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert not alive(first)  # the old QEMU was really stopped in between
    assert qemu_guest.qemu_pid() not in (None, first)
    assert qemu_guest.virsh("domid", qemu_guest.name).stdout != first_id


def test_reboot_that_cannot_start_again_fails_and_leaves_the_vm_off(
    qemu_guest, start_fencer, fence, tmp_path
):
    """The next start needs huge pages this host does not provide: the VM is fenced (off)
    but the answer is FAIL, where C answers success."""
    xml = qemu_guest.virsh("dumpxml", "--inactive", qemu_guest.name).stdout
    xml = xml.replace("</memory>", "</memory>\n<memoryBacking><hugepages/></memoryBacking>", 1)
    (tmp_path / "next.xml").write_text(xml)
    qemu_guest.virsh("define", str(tmp_path / "next.xml"))  # applies from the next start
    fencer = start_fencer(qemu_guest.uri)
    with pytest.raises(BackendError, match=rf"VM {qemu_guest.name} .* is off but did not start"):
        fence(fencer, "reboot", qemu_guest.name)
    assert qemu_guest.state() == "shut off"
    assert fence(fencer, "status", qemu_guest.name) is Response.OFF


def test_fencing_a_guest_is_seen_as_lifecycle_events(qemu_guest, start_fencer, run_async):
    fencer = start_fencer(qemu_guest.uri)
    target = Target(domain=qemu_guest.name, by_uuid=False, requester="t", seqno=1)

    async def scenario():
        events: asyncio.Queue[LifecycleEvent] = asyncio.Queue()
        watch = LifecycleWatch(qemu_guest.uri, events.put_nowait)
        await watch.start()
        try:
            for operation in (fencer.off, fencer.on, fencer.reboot):
                assert await asyncio.to_thread(operation, target) is Response.SUCCESS
            seen = []
            while len(seen) < 4:
                event = await asyncio.wait_for(events.get(), 60)
                # the session's libvirtd may hold other guests; QEMU also reports SHUTDOWN
                # (by the host) before each STOPPED
                if event.name == qemu_guest.name and event.event in (STOPPED, STARTED):
                    seen.append((event.uuid, event.event, event.detail))
        finally:
            await watch.stop()
        return seen

    destroyed = (qemu_guest.uuid, STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
    booted = (qemu_guest.uuid, STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
    assert run_async(scenario) == [destroyed, booted, destroyed, booted]


def test_live_xml_of_a_running_guest(qemu_guest):
    hv = Hypervisor(qemu_guest.uri)
    try:
        xml = domain_xml(hv, qemu_guest.uuid)
        inactive = domain_xml(hv, qemu_guest.uuid, inactive=True)
    finally:
        hv.close()
    assert xml is not None
    assert inactive is not None
    assert f"<name>{qemu_guest.name}</name>" in xml
    assert " id=" in xml.splitlines()[0]  # the running instance's description
    assert " id=" not in inactive.splitlines()[0]
    assert "<memballoon model='none'" in xml
