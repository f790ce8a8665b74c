"""Both channel listeners beside multicast in one of our daemons (three listener instances,
one backend): the C fence_xvm (multicast, inside the test namespace), the C fence_virt on the
guest's serial line (-D, a socat PTY) and on its vmchannel (-A 127.0.0.1 inside the namespace,
through the guestfwd stand-in) each fence a VM, and each instance's log lines carry its
name."""

from __future__ import annotations

import pytest

from fence_virt_testinfra.channels import run_c_fence_virt
from fence_virt_testinfra.guestfwd import GuestForward

pytestmark = [pytest.mark.c_suite, pytest.mark.netns, pytest.mark.timeout(300)]

PORT = 12291
RUNNING, SHUTOFF = 1, 5


def config(lab, key) -> str:
    return (
        'fence_virtd {\n\tlistener = "multicast";\n\tlistener = "serial";\n'
        '\tlistener = "vmchannel";\n\tbackend = "libvirt";\n}\n'
        "listeners {\n"
        f'\tmulticast {{\n\t\tkey_file = "{key}";\n\t\tinterface = "lo";\n\t}}\n'
        f'\tserial {{\n\t\turi = "{lab.uri}";\n\t\tpath = "{lab.dir}";\n\t}}\n'
        f'\tvmchannel {{\n\t\turi = "{lab.uri}";\n\t\tpath = "{lab.dir}";\n\t}}\n'
        "}\n"
        f'backends {{\n\tlibvirt {{\n\t\turi = "{lab.uri}";\n\t}}\n}}\n'
    )


def test_multicast_serial_and_vmchannel_in_one_daemon(
    lab, daemons, pty_guests, c_fence_virt, fence_xvm, ns, ns_loop
):
    guest = lab.start("guest", serial=1, channels=1)
    by_xvm, by_serial, by_channel = lab.vm("xvm"), lab.vm("serial"), lab.vm("channel")
    tty = pty_guests.listen(guest.serial[0])
    forward = GuestForward(guest.channels[0], PORT)
    ns_loop.run(forward.start())
    try:
        daemon = daemons.ours_text(config(lab, daemons.key))
        pty_guests.wait(tty)
        ns_loop.run(forward.connected())

        done = fence_xvm(ns, daemons.key, "-o", "off", "-H", by_xvm.name)
        assert (done.returncode, done.stderr) == (0, "")
        done = c_fence_virt(tty, "-o", "off", "-H", by_serial.uuid, "-t", "20")
        assert done.returncode == 0
        done = run_c_fence_virt(
            "-A", "127.0.0.1", "-p", str(PORT), "-o", "off", "-H", by_channel.name, ns=ns
        )
        assert (done.returncode, done.stderr) == (0, "")
    finally:
        ns_loop.run(forward.close())

    assert [lab.state(vm.name) for vm in (by_xvm, by_serial, by_channel)] == [SHUTOFF] * 3
    log = daemon.log()
    assert f"off {by_xvm.name} (requester 127.0.0.1, " in log
    assert f"off {by_serial.uuid} (requester {guest.uuid}, " in log
    assert f"off {by_channel.name} (requester {guest.uuid}, " in log
    for instance in ("multicast", "serial", "vmchannel"):
        assert f"listener {instance}): success" in log
