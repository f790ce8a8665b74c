"""Our ``fence_virt -D`` (core's agent) on a guest's serial line, row by row beside the C
``fence_virt -D`` on the same line: against our daemon's serial listener and against the C
fence_virtd's (recipes §3a). socat listens on the domain's socket as QEMU would and gives
the guest's end as a PTY; the daemons find the socket through libvirt (the test driver of
a hand-started libvirtd) and fence test-driver domains, whose state the test reads back.

Each row sets the victim's state, runs the C agent, reads the state, sets it again, runs
ours, reads it again: the same exit code, stdout and stderr (C's ``ioctl1`` line on a PTY
aside: ours prints nothing there), and the same effect. Every operation by name and by
UUID; a group that does not allow the target; a device another process holds locked; a
device that does not exist; a daemon that does not answer in time. The same for ``-A``
over a vmchannel (``GuestForward``, inside the test's namespace) against our vmchannel
listener, our serial listener in C's ``mode = "vmchannel"`` and the C daemon.

Network safety: both agents run only with ``-D`` naming a PTY made here (socat's) or a path
in the test's directory, or ``-A 127.0.0.1`` inside the test's namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import run_in
from fence_virt_testinfra.channels import SerialSetup, run_c_fence_virt
from fence_virt_testinfra.guestfwd import GuestForward

pytestmark = [pytest.mark.c_suite, pytest.mark.netns, pytest.mark.timeout(300)]

RUNNING, SHUTOFF = 1, 5
IOCTL1 = "ioctl1: Inappropriate ioctl for device\n"
FENCE_VIRT = str(Path(sys.executable).parent / "fence_virt")
NO_ANSWER = "Unknown response (-1)\n"


def run_ours(tty: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Our ``fence_virt -D TTY ARGS``, output as text."""
    argv = [FENCE_VIRT, "-D", str(tty), *args]
    return subprocess.run(argv, input="", capture_output=True, text=True, timeout=60, check=False)


def outcomes(tty: Path, *args: str, opens: bool = True) -> tuple[tuple[int, str, str], ...]:
    """(C's outcome, ours): exit code, stdout, stderr. C's ``ioctl1`` line (it prints one
    whenever it opened the PTY) is checked and left out; ours must print none."""
    theirs = run_c_fence_virt("-D", str(tty), *args)
    if opens:
        assert IOCTL1 in theirs.stderr, theirs
    c_err = theirs.stderr.replace(IOCTL1, "", 1)
    mine = run_ours(tty, *args)
    return (theirs.returncode, theirs.stdout, c_err), (mine.returncode, mine.stdout, mine.stderr)


def set_state(lab, name: str, state: int) -> None:
    if lab.state(name) == state:
        return
    domain = lab.conn.lookupByName(name)
    if state == RUNNING:
        domain.create()
    else:
        domain.destroy()


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_every_operation_by_name_and_uuid(lab, daemons, pty_guests, c_suite, daemon):
    guest, victim = lab.start("guest"), lab.vm("victim")
    tty = pty_guests.listen(guest.serial[0])
    daemons.start(daemon, SerialSetup(uri=lab.uri, path=lab.dir))
    pty_guests.wait(tty)
    # c-suite-spec §2.3: (arguments, state before, exit code, stdout, state after)
    rows = [
        (("-o", "status", "-H", victim.name), RUNNING, 0, "Status: ON\n", RUNNING),
        (("-o", "status", "-H", victim.uuid), RUNNING, 0, "Status: ON\n", RUNNING),
        (("-o", "status", "-H", victim.name), SHUTOFF, 2, "Status: OFF\n", SHUTOFF),
        (("-o", "status", "-H", victim.uuid), SHUTOFF, 2, "Status: OFF\n", SHUTOFF),
        (("-o", "off", "-H", victim.name), RUNNING, 0, "", SHUTOFF),
        (("-o", "off", "-H", victim.uuid), RUNNING, 0, "", SHUTOFF),
        (("-o", "on", "-H", victim.name), SHUTOFF, 0, "", RUNNING),
        (("-o", "on", "-H", victim.uuid), SHUTOFF, 0, "", RUNNING),
        (("-o", "reboot", "-H", victim.name), RUNNING, 0, "", RUNNING),
        (("-H", victim.uuid), RUNNING, 0, "", RUNNING),  # reboot is the default
        (("-o", "reboot", "-H", victim.name), SHUTOFF, 0, "", SHUTOFF),  # off stays off
        (("-o", "off", "-H", "no-such-vm"), RUNNING, 1, "Operation failed\n", RUNNING),
        (("-o", "null", "-H", victim.name), RUNNING, 1, "Operation failed\n", RUNNING),
        (("-o", "monitor"), RUNNING, 0, "", RUNNING),
        (("-w", "1", "-o", "off", "-H", victim.name), RUNNING, 0, "", SHUTOFF),
    ]
    for args, before, code, out, after in rows:
        results = []
        for which in ("c", "ours"):
            set_state(lab, victim.name, before)
            results.append(one(tty, which, args))
            assert lab.state(victim.name) == after, (which, args)
        assert results == [(code, out, "")] * 2, args

    listings = outcomes(tty, "-o", "list")
    assert listings[0] == listings[1]
    code, listing, _ = listings[1]
    assert code == 0
    assert f"{guest.name:<32} {guest.uuid} on" in listing.splitlines()
    assert f"{victim.name:<32} {victim.uuid} off" in listing.splitlines()  # the last row
    c_unknown, our_unknown = outcomes(tty, "-o", "status", "-H", "no-such-vm")
    # the C libvirt backend calls an unknown VM off; ours says it cannot tell
    assert our_unknown == ((1, "Operation failed\n", "") if daemon == "ours" else c_unknown)


def one(tty: Path, which: str, args: tuple[str, ...]) -> tuple[int, str, str]:
    if which == "ours":
        done = run_ours(tty, *args)
        return done.returncode, done.stdout, done.stderr
    done = run_c_fence_virt("-D", str(tty), *args)
    assert IOCTL1 in done.stderr, done
    return done.returncode, done.stdout, done.stderr.replace(IOCTL1, "", 1)


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_a_guest_outside_the_group_is_denied(lab, daemons, pty_guests, c_suite, daemon):
    """The requester is the domain owning the socket: the member may fence the allowed VM,
    not the other one; the outsider may fence neither (exit 3, C's message), and lists show
    each guest what its group allows."""
    member, outsider = lab.start("member"), lab.start("outsider")
    allowed, other = lab.vm("allowed"), lab.vm("other")
    member_tty = pty_guests.listen(member.serial[0])
    outsider_tty = pty_guests.listen(outsider.serial[0])
    groups = [("cluster", [member.uuid], [allowed.name, allowed.uuid])]
    daemons.start(daemon, SerialSetup(uri=lab.uri, path=lab.dir, groups=groups))
    pty_guests.wait(member_tty)
    pty_guests.wait(outsider_tty)
    denied = (3, "Permission denied\n", "")
    for tty, args, expected in [
        (member_tty, ("-o", "status", "-H", allowed.uuid), (0, "Status: ON\n", "")),
        (member_tty, ("-o", "reboot", "-H", allowed.name), (0, "", "")),
        (member_tty, ("-o", "off", "-H", other.name), denied),
        (member_tty, ("-o", "off", "-H", other.uuid), denied),
        (outsider_tty, ("-o", "off", "-H", allowed.name), denied),
        (outsider_tty, ("-o", "list"), (0, "", "")),
    ]:
        assert outcomes(tty, *args) == (expected, expected), args
    assert lab.state(allowed.name) == lab.state(other.name) == RUNNING
    listings = outcomes(member_tty, "-o", "list")
    assert listings[0] == listings[1]
    expected = sorted(f"{vm.name:<32} {vm.uuid} on" for vm in (allowed, member))
    assert sorted(listings[1][1].splitlines()) == expected


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_a_busy_device_a_missing_device_and_a_silent_daemon(
    lab, daemons, pty_guests, c_suite, daemon
):
    """* another process holds the line's lock: both agents fail at once (C's lines; our
      second line names the real reason) and send nothing -- the next request is served;
    * the device does not exist: both fail the same way (our second line: the reason);
    * the daemon is stopped: both wait ``-t`` seconds, then ``Unknown response (-1)``; the
      late answers that reach the line afterwards are flushed by the next run."""
    guest, victim = lab.start("guest"), lab.vm("victim")
    tty = pty_guests.listen(guest.serial[0])
    started = daemons.start(daemon, SerialSetup(uri=lab.uri, path=lab.dir))
    pty_guests.wait(tty)
    lock = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", lock, str(tty)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        began = time.monotonic()
        c_busy, our_busy = outcomes(tty, "-o", "off", "-H", victim.name, opens=False)
        assert time.monotonic() - began < 5
    finally:
        holder.kill()
        holder.wait()
    locked = "Failed to lock serial port: Resource temporarily unavailable\nopen_port: "
    assert c_busy == (255, NO_ANSWER, locked + "Invalid argument\n")
    assert our_busy == (255, NO_ANSWER, locked + "Resource temporarily unavailable\n")
    assert lab.state(victim.name) == RUNNING
    assert outcomes(tty, "-o", "status", "-H", victim.name) == ((0, "Status: ON\n", ""),) * 2

    missing = lab.dir / "ttyS9"
    c_missing, our_missing = outcomes(missing, "-o", "off", "-H", victim.name, opens=False)
    gone = "open: No such file or directory\nopen_port: "
    assert c_missing == (255, NO_ANSWER, gone + "Invalid argument\n")
    assert our_missing == (255, NO_ANSWER, gone + "No such file or directory\n")

    os.kill(started.pid, signal.SIGSTOP)
    try:
        for which in ("c", "ours"):
            began = time.monotonic()
            assert one(tty, which, ("-o", "status", "-H", victim.name, "-t", "2")) == (
                255,
                NO_ANSWER,
                "",
            )
            assert 2 <= time.monotonic() - began < 10
    finally:
        os.kill(started.pid, signal.SIGCONT)
    # the two late answers reach the line after their agents left; the next run flushes them
    time.sleep(1)
    set_state(lab, victim.name, SHUTOFF)
    assert outcomes(tty, "-o", "status", "-H", victim.name) == ((2, "Status: OFF\n", ""),) * 2


VMCHANNEL_PORT = 12291


def vmchannel_config(uri: str, path: Path) -> str:
    """Our vmchannel plugin's own block (the same implementation, vmchannel mode)."""
    return (
        'fence_virtd {\n\tlistener = "vmchannel";\n\tbackend = "libvirt";\n}\n'
        f'listeners {{\n\tvmchannel {{\n\t\turi = "{uri}";\n\t\tpath = "{path}";\n\t}}\n}}\n'
        f'backends {{\n\tlibvirt {{\n\t\turi = "{uri}";\n\t}}\n}}\n'
    )


@pytest.mark.parametrize("daemon", ["ours", "ours-c-config", "c"])
def test_vmchannel_every_operation_by_name_and_uuid(lab, daemons, ns, ns_loop, c_suite, daemon):
    """Our ``fence_virt -A 127.0.0.1 -p PORT`` beside the C one, inside the test's namespace,
    through ``GuestForward`` (QEMU's guestfwd in miniature: one chardev connection to the
    domain's channel socket, a TCP session per request): against our vmchannel listener, our
    serial listener read from a C configuration (``mode = "vmchannel";``) and the C daemon."""
    guest, victim = lab.start("guest", serial=0, channels=1), lab.vm("victim")
    forward = GuestForward(guest.channels[0], VMCHANNEL_PORT)
    ns_loop.run(forward.start())
    target = ("-A", "127.0.0.1", "-p", str(VMCHANNEL_PORT))

    def agent(which: str, args: tuple[str, ...]) -> tuple[int, str, str]:
        if which == "c":
            done = run_c_fence_virt(*target, *args, ns=ns)
            return done.returncode, done.stdout, done.stderr
        mine = run_in(ns, [FENCE_VIRT, *target, *args])
        return mine.returncode, mine.stdout.decode(), mine.stderr.decode()

    try:
        setup = SerialSetup(uri=lab.uri, path=lab.dir, mode="vmchannel")
        if daemon == "ours":
            daemons.ours_text(vmchannel_config(lab.uri, lab.dir))
        elif daemon == "ours-c-config":
            daemons.ours(setup)
        else:
            daemons.c(setup)
        ns_loop.run(forward.connected())
        rows = [
            (("-o", "status", "-H", victim.name), RUNNING, 0, "Status: ON\n", RUNNING),
            (("-o", "status", "-H", victim.uuid), SHUTOFF, 2, "Status: OFF\n", SHUTOFF),
            (("-o", "off", "-H", victim.name), RUNNING, 0, "", SHUTOFF),
            (("-o", "off", "-H", victim.uuid), RUNNING, 0, "", SHUTOFF),
            (("-o", "on", "-H", victim.name), SHUTOFF, 0, "", RUNNING),
            (("-o", "on", "-H", victim.uuid), SHUTOFF, 0, "", RUNNING),
            (("-o", "reboot", "-H", victim.name), RUNNING, 0, "", RUNNING),
            (("-o", "reboot", "-H", victim.uuid), RUNNING, 0, "", RUNNING),
            (("-o", "monitor"), RUNNING, 0, "", RUNNING),
        ]
        for args, before, code, out, after in rows:
            results = []
            for which in ("c", "ours"):
                set_state(lab, victim.name, before)
                results.append(agent(which, args))
                assert lab.state(victim.name) == after, (which, args)
            assert results == [(code, out, "")] * 2, args
        listings = [agent(which, ("-o", "list")) for which in ("c", "ours")]
        assert listings[0] == listings[1]
        assert f"{victim.name:<32} {victim.uuid} on" in listings[1][1].splitlines()
        assert forward.connections == 1  # one chardev connection served every request
    finally:
        ns_loop.run(forward.close())
