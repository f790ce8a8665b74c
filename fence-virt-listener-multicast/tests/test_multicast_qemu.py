"""End to end with a real QEMU guest: the C fence_xvm, our daemon, the libvirt backend.

The guest is a tiny QEMU VM (KVM when usable, else TCG) on a private libvirtd; our
fence_virtd runs in a namespace and reaches libvirtd through its UNIX socket.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.c_suite, pytest.mark.qemu]


def test_off_on_reboot_really_happen(ns, key_file, daemons, fence_xvm, qemu_vm) -> None:
    guest = qemu_vm.guest
    backend = f'backends {{\n\tlibvirt {{\n\t\turi = "{qemu_vm.uri}";\n\t}}\n}}\n'
    daemons.ours(ns, key_file, backend=backend)

    def xvm(*args: str) -> tuple[int, str]:
        done = fence_xvm(ns, key_file, *args)
        return done.returncode, done.stdout + done.stderr

    assert guest.state() == "running"
    assert xvm("-o", "status", "-H", guest.name) == (0, "Status: ON\n")
    listing = xvm("-o", "list")
    assert f"{guest.name:<32} {guest.uuid} on\n" in listing[1]

    assert xvm("-o", "off", "-H", guest.name) == (0, "")
    assert guest.state() == "shut off"
    assert guest.qemu_pid() is None
    assert xvm("-o", "status", "-H", guest.name) == (2, "Status: OFF\n")

    assert xvm("-o", "on", "-u", "-H", guest.uuid) == (0, "")
    assert guest.state() == "running"
    before = guest.qemu_pid()
    assert before is not None

    assert xvm("-o", "reboot", "-H", guest.name) == (0, "")
    assert guest.state() == "running"
    after = guest.qemu_pid()
    assert after is not None
    assert after != before, "reboot must replace the QEMU process (destroy, then start)"
