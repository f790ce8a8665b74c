"""Off at the QEMU process's exit, on a real QEMU guest through a hand-started libvirtd: the
answer comes when the process is gone (checked here with a pidfd of our own, not from the
Fencer's word), libvirt reads the VM shut off later, the next operation waits for libvirt's
destroy to end; a pid file pointing at another process, and a URI that is not local, fall
back to libvirt's own answer (the state reads shut off at the answer)."""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fence_virt.protocol import Response
from fence_virt_libvirt import RebootAnswer, qemu_pid_dir

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(180)]


def exited(pidfd: int) -> bool:
    """Whether the process behind ``pidfd`` has exited, now."""
    return bool(select.select([pidfd], [], [], 0)[0])


def wait_for_state(guest, state: str, timeout: float = 60.0) -> None:
    give_up = time.monotonic() + timeout
    while guest.state() != state:
        assert time.monotonic() < give_up, f"{guest.name} is {guest.state()}, not {state}"
        time.sleep(0.05)


@pytest.fixture
def fast_fencer(libvirtd, start_fencer):
    """``fast_fencer(**options)``: a Fencer on the session libvirtd's QEMU URI answering off at
    the QEMU process's exit (the pid directory of that private libvirtd)."""
    return lambda **options: start_fencer(
        libvirtd.qemu_uri, qemu_pid_dirs={libvirtd.qemu_uri: libvirtd.qemu_pid_dir}, **options
    )


def test_off_answers_once_the_qemu_process_is_gone(qemu_guest, fast_fencer, fence, caplog):
    fencer = fast_fencer()
    pid = qemu_guest.qemu_pid()
    assert pid is not None
    pidfd = os.pidfd_open(pid)
    try:
        with caplog.at_level(logging.INFO, logger="fence_virt_libvirt"):
            assert fence(fencer, "off", qemu_guest.name) is Response.SUCCESS
            assert exited(pidfd), "off answered while the guest's QEMU process still ran"
            # the answer came from the exit, not from libvirt (the log says which)
            assert f"its QEMU process {pid} exited" in caplog.text
            wait_for_state(qemu_guest, "shut off")
            # the next operation waits for libvirt's destroy, then answers from its state
            assert fence(fencer, "status", qemu_guest.name) is Response.OFF
    finally:
        os.close(pidfd)


def test_on_right_after_a_fast_off_starts_the_guest(qemu_guest, fast_fencer, fence):
    fencer = fast_fencer()
    first = qemu_guest.qemu_pid()
    assert fence(fencer, "off", qemu_guest.name) is Response.SUCCESS
    assert fence(fencer, "on", qemu_guest.name) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert qemu_guest.qemu_pid() not in (None, first)


def test_reboot_answered_at_off_starts_the_guest_again(qemu_guest, fast_fencer, fence):
    fencer = fast_fencer(reboot_answer=RebootAnswer.OFF)
    first = qemu_guest.qemu_pid()
    assert first is not None
    pidfd = os.pidfd_open(first)
    try:
        assert fence(fencer, "reboot", qemu_guest.name) is Response.SUCCESS
        assert exited(pidfd)
    finally:
        os.close(pidfd)
    # status waits for the background power-on (it holds the VM's lock): ON, and running
    assert fence(fencer, "status", qemu_guest.name) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert qemu_guest.qemu_pid() not in (None, first)


def test_reboot_answered_when_running_with_a_fast_off(qemu_guest, fast_fencer, fence):
    fencer = fast_fencer(reboot_answer=RebootAnswer.RUNNING)
    first = qemu_guest.qemu_pid()
    assert fence(fencer, "reboot", qemu_guest.name) is Response.SUCCESS
    assert qemu_guest.state() == "running"
    assert qemu_guest.qemu_pid() not in (None, first)


def test_a_pid_file_naming_another_process_falls_back(
    qemu_guest, fast_fencer, fence, caplog, libvirtd
):
    """A stale pid file whose pid now belongs to another process: the identity check fails,
    off waits for libvirt (the VM reads shut off at the answer) and the other process lives."""
    fencer = fast_fencer()
    pid_file = libvirtd.qemu_pid_dir / f"{qemu_guest.name}.pid"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pid_file.write_text(f"{other.pid}\n")
        with caplog.at_level(logging.INFO, logger="fence_virt_libvirt"):
            assert fence(fencer, "off", qemu_guest.name) is Response.SUCCESS
        assert qemu_guest.state() == "shut off"
        assert other.poll() is None
        assert f"process {other.pid} is not this domain's QEMU" in caplog.text
    finally:
        other.kill()
        other.wait()


def test_a_uri_that_is_not_local_falls_back(qemu_guest, start_fencer, fence, libvirtd, tmp_path):
    """The same libvirtd through libvirt's ``ext`` transport (a command carries the
    connection, as ssh would): not local, so off waits for libvirt's destroy."""
    connect = tmp_path / "connect"
    connect.write_text(f"#!/bin/sh\nexec socat - UNIX-CONNECT:{libvirtd.socket}\n")
    connect.chmod(0o755)
    uri = f"qemu+ext:///system?command={connect}"
    assert qemu_pid_dir(uri, libvirtd.qemu_pid_dir) is None
    fencer = start_fencer(uri, qemu_pid_dirs={})
    pid = qemu_guest.qemu_pid()
    assert fence(fencer, "off", qemu_guest.name) is Response.SUCCESS
    assert qemu_guest.state() == "shut off"
    assert pid is not None
    assert not Path(f"/proc/{pid}").exists()


def test_the_answer_does_not_wait_for_libvirt_once_qemu_has_exited(
    qemu_guest, fast_fencer, fence, libvirtd
):
    """libvirtd is stopped (SIGSTOP) the moment the guest's QEMU process exits, in the middle
    of its destroy: off still answers SUCCESS (it asks libvirt nothing after the exit), and the
    destroy ends once libvirtd resumes."""
    fencer = fast_fencer()
    pid = qemu_guest.qemu_pid()
    assert pid is not None
    pidfd = os.pidfd_open(pid)
    answers: list[Response] = []

    def pause_at_exit() -> None:
        select.select([pidfd], [], [], 60)
        libvirtd.pause()

    watcher = threading.Thread(target=pause_at_exit, daemon=True)
    watcher.start()
    offer = threading.Thread(target=lambda: answers.append(fence(fencer, "off", qemu_guest.name)))
    try:
        offer.start()
        offer.join(90)
        watcher.join(60)
        assert answers == [Response.SUCCESS]
    finally:
        libvirtd.resume()
        os.close(pidfd)
        offer.join(90)
    wait_for_state(qemu_guest, "shut off")


def test_reboot_answered_at_off_logs_a_failed_power_on_as_an_error(
    qemu_guest, fast_fencer, fence, caplog, tmp_path
):
    """The next start needs huge pages this host does not provide: the reboot answers
    SUCCESS at off (the VM is fenced), the power-on fails in the background, and that is an
    error in the log; the VM stays off."""
    xml = qemu_guest.virsh("dumpxml", "--inactive", qemu_guest.name).stdout
    xml = xml.replace("</memory>", "</memory>\n<memoryBacking><hugepages/></memoryBacking>", 1)
    (tmp_path / "next.xml").write_text(xml)
    qemu_guest.virsh("define", str(tmp_path / "next.xml"))  # applies from the next start
    fencer = fast_fencer(reboot_answer=RebootAnswer.OFF)
    with caplog.at_level(logging.INFO, logger="fence_virt_libvirt"):
        assert fence(fencer, "reboot", qemu_guest.name) is Response.SUCCESS
        # status waits for the background power-on to end (it holds the VM's lock)
        assert fence(fencer, "status", qemu_guest.name) is Response.OFF
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed) == 1, caplog.text
    assert f"REBOOT: VM {qemu_guest.name}" in failed[0].getMessage()
    assert "was fenced (it is off) but did NOT start again" in failed[0].getMessage()
    assert qemu_guest.state() == "shut off"
