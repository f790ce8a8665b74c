"""A real QEMU guest through a hand-started libvirtd (qemu:///system): off really stops the
QEMU process, on starts one, reboot replaces it, status follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.errors import BackendError
from fence_virt.protocol import Response

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(180)]

SHUTOFF = 5


def alive(pid):
    return Path(f"/proc/{pid}").exists()


def test_off_status_on(qemu_guest, start_backend, fence):
    hook = start_backend(qemu_guest.uri)
    name, first = qemu_guest.name, qemu_guest.qemu_pid()
    assert first is not None
    assert fence(hook, "status", name) is Response.SUCCESS

    assert fence(hook, "off", name) is Response.SUCCESS
    assert qemu_guest.state() == "shut off"
    assert not alive(first)
    assert fence(hook, "status", name) is Response.OFF
    listed = {s.domain: s for s in hook.fence_virt_backend_hostlist(requester="t")}
    assert (listed[name].uuid, listed[name].state) == (qemu_guest.uuid, SHUTOFF)

    assert fence(hook, "on", qemu_guest.uuid, by_uuid=True) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert qemu_guest.qemu_pid() not in (None, first)
    assert fence(hook, "status", name) is Response.SUCCESS
    assert hook.fence_virt_backend_devstatus() is Response.SUCCESS


def test_reboot_replaces_the_qemu_process(qemu_guest, start_backend, fence):
    hook = start_backend(qemu_guest.uri)
    first, first_id = qemu_guest.qemu_pid(), qemu_guest.virsh("domid", qemu_guest.name).stdout
    assert fence(hook, "reboot", qemu_guest.name) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert not alive(first)  # the old QEMU was really stopped in between
    assert qemu_guest.qemu_pid() not in (None, first)
    assert qemu_guest.virsh("domid", qemu_guest.name).stdout != first_id


def test_reboot_that_cannot_start_again_fails_and_leaves_the_vm_off(
    qemu_guest, start_backend, fence, tmp_path
):
    """The next start needs huge pages this host does not provide: the VM is fenced (off)
    but the answer is FAIL, where C answers success."""
    xml = qemu_guest.virsh("dumpxml", "--inactive", qemu_guest.name).stdout
    xml = xml.replace("</memory>", "</memory>\n<memoryBacking><hugepages/></memoryBacking>", 1)
    (tmp_path / "next.xml").write_text(xml)
    qemu_guest.virsh("define", str(tmp_path / "next.xml"))  # applies from the next start
    hook = start_backend(qemu_guest.uri)
    with pytest.raises(BackendError, match=rf"VM {qemu_guest.name} .* is off but did not start"):
        fence(hook, "reboot", qemu_guest.name)
    assert qemu_guest.state() == "shut off"
    assert fence(hook, "status", qemu_guest.name) is Response.OFF
