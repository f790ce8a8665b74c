"""The C ``fence_virt -A 127.0.0.1 -p PORT`` over a vmchannel (recipes §3b) against our
vmchannel listener, against our serial listener read from a C configuration
(``listener = "serial";`` with ``mode = "vmchannel";``), and against the C fence_virtd.

The guest side is ``GuestForward``, QEMU's guestfwd in miniature: it listens on the domain's
channel socket (the daemon connects once, as to QEMU's chardev) and on TCP 127.0.0.1 inside
the test's namespace, where the C agent connects for each request; socat would carry one
session only. The domains are libvirt test-driver domains on a hand-started libvirtd."""

from __future__ import annotations

import pytest

from fence_virt_testinfra.channels import SerialSetup, run_c_fence_virt
from fence_virt_testinfra.guestfwd import GuestForward

pytestmark = [pytest.mark.c_suite, pytest.mark.netns, pytest.mark.timeout(300)]

PORT = 12290
RUNNING, SHUTOFF = 1, 5


def vmchannel_config(uri: str, path: str) -> str:
    """Our vmchannel plugin's own block: no mode key needed."""
    return (
        'fence_virtd {\n\tlistener = "vmchannel";\n\tbackend = "libvirt";\n}\n'
        f'listeners {{\n\tvmchannel {{\n\t\turi = "{uri}";\n\t\tpath = "{path}";\n\t}}\n}}\n'
        f'backends {{\n\tlibvirt {{\n\t\turi = "{uri}";\n\t}}\n}}\n'
    )


@pytest.mark.parametrize("daemon", ["ours", "ours-c-config", "c"])
def test_every_operation_by_name_and_uuid(lab, daemons, ns, ns_loop, c_suite, daemon):
    guest = lab.start("guest", serial=1, channels=1)  # the serial socket is not the channel
    victim = lab.vm("victim")
    forward = GuestForward(guest.channels[0], PORT)
    ns_loop.run(forward.start())
    try:
        setup = SerialSetup(uri=lab.uri, path=lab.dir, mode="vmchannel")
        if daemon == "ours":
            started = daemons.ours_text(vmchannel_config(lab.uri, str(lab.dir)))
        elif daemon == "ours-c-config":
            started = daemons.ours(setup)
        else:
            started = daemons.c(setup)
        ns_loop.run(forward.connected())

        def agent(*args: str) -> tuple[int, str]:
            done = run_c_fence_virt("-A", "127.0.0.1", "-p", str(PORT), *args, "-t", "20", ns=ns)
            assert done.stderr == "", done.stderr
            return done.returncode, done.stdout

        steps = [
            (("-o", "status", "-H", victim.name), (0, "Status: ON\n"), RUNNING),
            (("-o", "status", "-H", victim.uuid), (0, "Status: ON\n"), RUNNING),
            (("-o", "off", "-H", victim.name), (0, ""), SHUTOFF),
            (("-o", "status", "-H", victim.uuid), (2, "Status: OFF\n"), SHUTOFF),
            (("-o", "on", "-H", victim.uuid), (0, ""), RUNNING),
            (("-o", "reboot", "-H", victim.name), (0, ""), RUNNING),
            (("-o", "off", "-H", victim.uuid), (0, ""), SHUTOFF),
            (("-o", "on", "-H", victim.name), (0, ""), RUNNING),
            (("-o", "monitor"), (0, ""), RUNNING),
        ]
        for args, expected, state in steps:
            assert agent(*args) == expected, args
            assert lab.state(victim.name) == state, args
        code, listing = agent("-o", "list")
        assert code == 0
        assert f"{victim.name:<32} {victim.uuid} on" in listing.splitlines()
        assert forward.connections == 1  # one chardev connection for every request
        if daemon != "c":
            assert f"serving guest {guest.uuid} ({guest.name}) on {guest.channels[0]}" in (
                started.log()
            )
            assert str(guest.serial[0]) not in started.log()
    finally:
        ns_loop.run(forward.close())
