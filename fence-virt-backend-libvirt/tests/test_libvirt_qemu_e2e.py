"""A real QEMU guest fenced through our fence_virtd (multicast listener, this backend) by our
fence_xvm, in a namespace: off answers when the guest's QEMU process is gone -- checked here
with a pidfd opened before the request, not from the daemon's word -- libvirt reads the
guest shut off later, an ``on`` right after a fast off succeeds; a pid file naming another
process is refused by the identity check; a URI reaching the same
libvirtd through a command (libvirt's ``ext`` transport, as ssh would) is not local, and its
off waits for libvirt (the guest reads shut off at the answer)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import run_in
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_XVM, running_fence_virtd
from fence_virt_testinfra.qemu import QemuGuest

pytestmark = [pytest.mark.netns, pytest.mark.qemu, pytest.mark.timeout(240)]


def config(path: Path, key_file: Path, uri: str, extra: str = "") -> Path:
    path.write_text(
        'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "libvirt";\n}\n'
        f'listeners {{\n\tmulticast {{\n\t\tkey_file = "{key_file}";\n\t\tinterface = "lo";\n'
        f'\t}}\n}}\nbackends {{\n\tlibvirt {{\n\t\turi = "{uri}";\n{extra}\t}}\n}}\n'
    )
    path.chmod(0o600)
    return path


def xvm(ns: NetNS, key_file: Path, *args: str) -> tuple[int, str]:
    done = run_in(ns, [FENCE_XVM, "-k", str(key_file), *args])
    return done.returncode, (done.stdout + done.stderr).decode()


def exited(pidfd: int) -> bool:
    return bool(select.select([pidfd], [], [], 0)[0])


def off_seen_by_pidfd(ns: NetNS, key_file: Path, guest: QemuGuest) -> bool:
    """Send off; whether the QEMU process had exited when the client returned success."""
    pid = guest.qemu_pid()
    assert pid is not None
    pidfd = os.pidfd_open(pid)
    try:
        assert xvm(ns, key_file, "-o", "off", "-H", guest.name) == (0, "")
        return exited(pidfd)
    finally:
        os.close(pidfd)


def wait_for_state(guest: QemuGuest, state: str, timeout: float = 60.0) -> None:
    give_up = time.monotonic() + timeout
    while guest.state() != state:
        assert time.monotonic() < give_up, f"{guest.name} is {guest.state()}, not {state}"
        time.sleep(0.05)


def test_off_answers_when_the_qemu_process_is_gone_and_on_follows_at_once(
    ns, key_file, tmp_path, libvirtd, qemu_guest
) -> None:
    extra = f'\t\tqemu_pid_dir = "{libvirtd.qemu_pid_dir}";\n'
    conf = config(tmp_path / "fence_virt.conf", key_file, libvirtd.qemu_uri, extra)
    guest = qemu_guest
    with running_fence_virtd(ns, tmp_path / "fvd", conf, debug=1) as daemon:
        assert off_seen_by_pidfd(ns, key_file, guest), "success while QEMU still ran"
        first = guest.qemu_pid()
        assert xvm(ns, key_file, "-o", "on", "-H", guest.name) == (0, "")  # right away
        assert guest.state() == "running"
        assert guest.qemu_pid() not in (None, first)

        assert off_seen_by_pidfd(ns, key_file, guest), "success while QEMU still ran"
        wait_for_state(guest, "shut off")
        assert xvm(ns, key_file, "-o", "status", "-H", guest.name) == (2, "Status: OFF\n")
        log = daemon.log()
    assert log.count("is off: its QEMU process") == 2, log
    assert "libvirt finished its destroy" in log


def test_a_uri_that_is_not_local_waits_for_libvirt(
    ns, key_file, tmp_path, libvirtd, qemu_guest
) -> None:
    connect = tmp_path / "connect"
    connect.write_text(f"#!/bin/sh\nexec socat - UNIX-CONNECT:{libvirtd.socket}\n")
    connect.chmod(0o755)
    extra = f'\t\tqemu_pid_dir = "{libvirtd.qemu_pid_dir}";\n'
    uri = f"qemu+ext:///system?command={connect}"
    conf = config(tmp_path / "fence_virt.conf", key_file, uri, extra)
    with running_fence_virtd(ns, tmp_path / "fvd", conf, debug=1) as daemon:
        assert xvm(ns, key_file, "-o", "off", "-H", qemu_guest.name) == (0, "")
        assert qemu_guest.state() == "shut off"  # libvirt's destroy had returned
        log = daemon.log()
    assert "is off: its QEMU process" not in log
    assert "off answered once a guest's QEMU process has exited" not in log


def test_a_pid_file_naming_another_process_waits_for_libvirt(
    ns, key_file, tmp_path, libvirtd, qemu_guest
) -> None:
    """libvirt's pid file for the guest names a process that is not its QEMU (a stale file
    whose pid was reused): the identity check refuses it, off waits for libvirt's destroy (the
    guest reads shut off at the answer), and that other process is left alone."""
    extra = f'\t\tqemu_pid_dir = "{libvirtd.qemu_pid_dir}";\n'
    conf = config(tmp_path / "fence_virt.conf", key_file, libvirtd.qemu_uri, extra)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (libvirtd.qemu_pid_dir / f"{qemu_guest.name}.pid").write_text(f"{other.pid}\n")
        with running_fence_virtd(ns, tmp_path / "fvd", conf, debug=1) as daemon:
            assert xvm(ns, key_file, "-o", "off", "-H", qemu_guest.name) == (0, "")
            assert qemu_guest.state() == "shut off"
            log = daemon.log()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
    assert f"process {other.pid} is not this domain's QEMU" in log
    assert "is off: its QEMU process" not in log
