"""Issue 21 C7: a target with blanks on stdin fences exactly that VM, end to end.

Pacemaker passes ``port=db primary`` (its host maps allow such values). The host runs two
VMs, ``db`` and ``db primary``: domains of libvirt's test driver through the session's
hand-started libvirtd, so our fence_virtd (multicast listener, libvirt backend) and this test
share one test-driver state. Our ``fence_xvm`` reads the whole value and powers off ``db
primary`` only; the C ``fence_xvm`` cut the value at the blank and powered off ``db`` -- and
exited 0. Both agents run only inside the test's namespace (they multicast).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from fence_virt_testinfra.c_suite import C_FENCE_XVM, MulticastSetup, have_c_suite, run_in
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_XVM, our_fence_virtd
from fence_virt_testinfra.tools import unavailable

pytestmark = [pytest.mark.netns]

RUNNING, SHUTOFF = 1, 5
NAMES = ("db", "db primary")


@pytest.fixture
def vms(libvirtd: Libvirtd) -> Iterator[libvirt.virConnect]:
    """``db`` and ``db primary`` on the libvirtd's test driver; removed after."""
    conn = libvirt.open(libvirtd.test_uri)
    domains = []
    try:
        for name in NAMES:
            xml = (
                f"<domain type='test'><name>{name}</name><memory>8192</memory>"
                "<os><type>hvm</type></os></domain>"
            )
            domains.append(conn.defineXML(xml))
        yield conn
    finally:
        for domain in domains:
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                domain.undefine()
        conn.close()


def states(conn: libvirt.virConnect) -> dict[str, int]:
    return {name: conn.lookupByName(name).state()[0] for name in NAMES}


def power_on(conn: libvirt.virConnect) -> None:
    for name in NAMES:
        domain = conn.lookupByName(name)
        if domain.state()[0] != RUNNING:
            domain.create()
    assert states(conn) == dict.fromkeys(NAMES, RUNNING)


def stdin(key: Path, action: str, target: str) -> bytes:
    """What Pacemaker's fencer writes, a blank in the target included."""
    lines = [f"action={action}", f"port={target}", f"key_file={key}", "timeout=10", "nodename=n1"]
    return ("\n".join(lines) + "\n").encode()


def test_off_on_a_target_with_a_blank_powers_off_exactly_that_vm(
    vms: libvirt.virConnect, libvirtd: Libvirtd, ns: NetNS, key_file: Path, tmp_path: Path
) -> None:
    setup = MulticastSetup(key_file=key_file, uri=libvirtd.test_uri)
    with our_fence_virtd(ns, tmp_path / "daemon", setup):
        power_on(vms)
        status = run_in(ns, [FENCE_XVM], stdin(key_file, "status", "db primary"))
        assert (status.returncode, status.stdout) == (0, b"Status: ON\n"), status
        off = run_in(ns, [FENCE_XVM], stdin(key_file, "off", "db primary"))
        assert (off.returncode, off.stdout, off.stderr) == (0, b"", b""), off
        assert states(vms) == {"db": RUNNING, "db primary": SHUTOFF}
        status = run_in(ns, [FENCE_XVM], stdin(key_file, "status", "db primary"))
        assert (status.returncode, status.stdout) == (2, b"Status: OFF\n"), status
        assert states(vms) == {"db": RUNNING, "db primary": SHUTOFF}
        on = run_in(ns, [FENCE_XVM], stdin(key_file, "on", "db primary"))
        assert on.returncode == 0, on
        assert states(vms) == dict.fromkeys(NAMES, RUNNING)


@pytest.mark.c_suite
def test_the_c_agent_cut_the_target_and_powered_off_another_vm(
    vms: libvirt.virConnect, libvirtd: Libvirtd, ns: NetNS, key_file: Path, tmp_path: Path
) -> None:
    """C's answer, pinned as the reason for the difference: ``db`` goes off, exit 0."""
    if not have_c_suite():
        unavailable("the C fence-virt suite (fence-virt, fence-virtd) is not installed")
    setup = MulticastSetup(key_file=key_file, uri=libvirtd.test_uri)
    with our_fence_virtd(ns, tmp_path / "daemon", setup):
        power_on(vms)
        off = run_in(ns, [C_FENCE_XVM], stdin(key_file, "off", "db primary"))
        assert off.returncode == 0, off
        assert states(vms) == {"db": SHUTOFF, "db primary": RUNNING}
