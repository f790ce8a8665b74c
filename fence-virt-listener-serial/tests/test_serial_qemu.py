"""With a real QEMU guest whose serial port is a UNIX socket in bind mode: our serial listener
finds it in the live XML of ``qemu:///system`` (a hand-started libvirtd) and connects to
QEMU's own socket; it lets go when the guest stops. The tiny guest runs no agent, so the
requests come from a socat guest of the test driver through a second listener instance:
the C ``fence_virt -D`` there turns the QEMU guest off, on and reboots it (the listener's
URI and the backend's differ, as C allows)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.qemu import QEMU_BINARY, QemuGuest, kvm_usable, tiny_domain_xml
from fence_virt_testinfra.tools import skip_unless_installed

pytestmark = [pytest.mark.c_suite, pytest.mark.netns, pytest.mark.qemu, pytest.mark.timeout(300)]


@contextlib.contextmanager
def qemu_guest_with_serial(libvirtd, name: str, socket: Path) -> Iterator[QemuGuest]:
    """A running tiny QEMU guest whose ttyS0 is QEMU's UNIX socket ``socket`` (bind mode)."""
    skip_unless_installed(QEMU_BINARY)
    guest = QemuGuest(name, libvirtd.qemu_uri, kvm_usable(), libvirtd.qemu_pid_dir)
    serial = f"<serial type='unix'><source mode='bind' path='{socket}'/><target port='0'/></serial>"
    xml = tiny_domain_xml(name, kvm=guest.kvm).replace("<devices>", f"<devices>{serial}")
    definition = socket.with_suffix(".xml")
    definition.write_text(xml)
    guest.virsh("define", str(definition))
    try:
        guest.virsh("start", name)
        yield guest
    finally:
        guest.virsh("destroy", name, check=False)
        guest.virsh("undefine", name, check=False)


def wait_for(log, text: str, timeout: float = 30, *, times: int = 1) -> None:
    """Until ``text`` appears ``times`` times in the log."""
    deadline = time.monotonic() + timeout
    while log().count(text) < times:
        assert time.monotonic() < deadline, f"{text!r} not {times} times in:\n{log()}"
        time.sleep(0.1)


def test_qemus_own_socket_is_served_and_a_socat_guest_fences_the_qemu_guest(
    lab, libvirtd, daemons, pty_guests, c_fence_virt, sock_dir
):
    qemu_dir = sock_dir / "qemu"
    qemu_dir.mkdir()
    requester = lab.start("requester")
    tty = pty_guests.listen(requester.serial[0])
    name = f"fvt-serial-{os.getpid()}"
    with qemu_guest_with_serial(libvirtd, name, qemu_dir / "ttyS0.sock") as guest:
        daemon = daemons.ours_text(
            'fence_virtd {\n\tlistener = "guests";\n\tlistener = "qemu";\n'
            '\tbackend = "libvirt";\n}\n'
            "listeners {\n"
            f'\tguests {{\n\t\tplugin = "serial";\n\t\turi = "{lab.uri}";\n'
            f'\t\tpath = "{lab.dir}";\n\t}}\n'
            f'\tqemu {{\n\t\tplugin = "serial";\n\t\turi = "{libvirtd.qemu_uri}";\n'
            f'\t\tpath = "{qemu_dir}";\n\t}}\n'
            "}\n"
            f'backends {{\n\tlibvirt {{\n\t\turi = "{libvirtd.qemu_uri}";\n\t}}\n}}\n'
        )
        serving = f"serving guest {guest.uuid} ({name}) on {qemu_dir}/ttyS0.sock"
        wait_for(daemon.log, serving)
        pty_guests.wait(tty)

        def agent(*args: str) -> int:
            return c_fence_virt(tty, *args, "-t", "60").returncode

        assert agent("-o", "status", "-H", name) == 0
        assert agent("-o", "off", "-H", guest.uuid) == 0
        assert guest.state() == "shut off"
        assert guest.qemu_pid() is None
        wait_for(daemon.log, f"domain {name} ({guest.uuid}): releasing {qemu_dir}/ttyS0.sock")

        assert agent("-o", "on", "-H", name) == 0
        assert guest.state() == "running"
        before = guest.qemu_pid()
        assert agent("-o", "reboot", "-H", name) == 0
        assert guest.state() == "running"
        assert guest.qemu_pid() not in (None, before)
        # each QEMU process listens anew: found from the events and served again (on, reboot)
        wait_for(daemon.log, serving, times=3)
        # QEMU closing its socket before libvirt reports the stop is no cause for a warning
        assert "fence_virt.listener.qemu WARNING" not in daemon.log()
