"""The C ``fence_virt -D`` on a guest's serial line against our daemon and, on the same setup,
against the C fence_virtd's serial listener (recipes §3a): socat listens on the domain's
socket as QEMU would and gives the guest's end as a PTY; the daemons find the socket through
libvirt (the test driver of a hand-started libvirtd) and fence test-driver domains, which the
test reads back through its own connection.

Every operation by name and by UUID (C's fence_virt has no ``-u``: a UUID is recognised by
its form), permissions from static maps (the requester is the UUID of the domain whose socket
the request came in on), and the C agent's output and exit codes, which must be the same for
both daemons except where ours deliberately differs (status of an unknown VM)."""

from __future__ import annotations

import pytest

from fence_virt_testinfra.channels import SerialSetup

pytestmark = [pytest.mark.c_suite, pytest.mark.netns, pytest.mark.timeout(300)]

RUNNING, SHUTOFF = 1, 5


def outcome(done) -> tuple[int, str, str]:
    """(exit code, stdout, stderr without the PTY's harmless ioctl line)."""
    stderr = "".join(
        line for line in done.stderr.splitlines(keepends=True) if not line.startswith("ioctl")
    )
    return done.returncode, done.stdout, stderr


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_every_operation_by_name_and_uuid(lab, daemons, pty_guests, c_fence_virt, daemon):
    guest = lab.start("guest")
    victim = lab.vm("victim")
    tty = pty_guests.listen(guest.serial[0])
    daemons.start(daemon, SerialSetup(uri=lab.uri, path=lab.dir))
    pty_guests.wait(tty)

    def agent(*args: str) -> tuple[int, str, str]:
        return outcome(c_fence_virt(tty, *args, "-t", "20"))

    steps = [
        (("-o", "status", "-H", victim.name), (0, "Status: ON\n", ""), RUNNING),
        (("-o", "status", "-H", victim.uuid), (0, "Status: ON\n", ""), RUNNING),
        (("-o", "off", "-H", victim.name), (0, "", ""), SHUTOFF),
        (("-o", "status", "-H", victim.name), (2, "Status: OFF\n", ""), SHUTOFF),
        (("-o", "status", "-H", victim.uuid), (2, "Status: OFF\n", ""), SHUTOFF),
        (("-o", "on", "-H", victim.uuid), (0, "", ""), RUNNING),
        (("-o", "reboot", "-H", victim.name), (0, "", ""), RUNNING),
        (("-o", "reboot", "-H", victim.uuid), (0, "", ""), RUNNING),
        (("-o", "off", "-H", victim.uuid), (0, "", ""), SHUTOFF),
        (("-o", "reboot", "-H", victim.name), (0, "", ""), SHUTOFF),  # an off VM stays off
        (("-o", "on", "-H", victim.name), (0, "", ""), RUNNING),
        (
            (
                "-o",
                "monitor",
            ),
            (0, "", ""),
            RUNNING,
        ),
    ]
    for args, expected, state in steps:
        assert agent(*args) == expected, args
        assert lab.state(victim.name) == state, args

    code, listing, _ = agent("-o", "list")
    assert code == 0
    lines = listing.splitlines()
    assert f"{guest.name:<32} {guest.uuid} on" in lines
    assert f"{victim.name:<32} {victim.uuid} on" in lines

    unknown = agent("-o", "status", "-H", "no-such-vm")
    if daemon == "c":
        assert unknown == (2, "Status: OFF\n", "")  # C: an unknown VM is "off"
    else:
        assert unknown == (1, "Operation failed\n", "")  # ours: it is not known to be off
    assert agent("-o", "off", "-H", "no-such-vm") == (1, "Operation failed\n", "")


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_a_guest_fences_only_what_its_group_allows(lab, daemons, pty_guests, c_fence_virt, daemon):
    """The requester is the socket's domain: the same request from another guest's line is
    refused (permission denied, exit 3), and lists show only the group's VMs."""
    member, outsider = lab.start("member"), lab.start("outsider")
    allowed, other = lab.vm("allowed"), lab.vm("other")
    member_tty = pty_guests.listen(member.serial[0])
    outsider_tty = pty_guests.listen(outsider.serial[0])
    groups = [("cluster", [member.uuid], [allowed.name, allowed.uuid])]
    started = daemons.start(daemon, SerialSetup(uri=lab.uri, path=lab.dir, groups=groups))
    pty_guests.wait(member_tty)
    pty_guests.wait(outsider_tty)

    def agent(tty, *args: str) -> tuple[int, str, str]:
        return outcome(c_fence_virt(tty, *args, "-t", "20"))

    assert agent(member_tty, "-o", "status", "-H", allowed.name) == (0, "Status: ON\n", "")
    assert agent(member_tty, "-o", "reboot", "-H", allowed.uuid) == (0, "", "")
    denied = (3, "Permission denied\n", "")
    assert agent(member_tty, "-o", "off", "-H", other.name) == denied
    assert agent(outsider_tty, "-o", "off", "-H", allowed.name) == denied
    assert lab.state(other.name) == lab.state(allowed.name) == RUNNING

    code, listing, _ = agent(member_tty, "-o", "list")
    # C's rule: a group's uuid entries are its requesters and its targets alike
    expected = sorted([f"{vm.name:<32} {vm.uuid} on" for vm in (allowed, member)])
    assert (code, sorted(listing.splitlines())) == (0, expected)
    code, listing, _ = agent(outsider_tty, "-o", "list")
    assert (code, listing) == (0, "")

    if daemon == "ours":
        log = started.log()
        assert f"off {other.name} for {member.uuid} (listener serial): denied" in log
        assert f"off {allowed.name} for {outsider.uuid} (listener serial): denied" in log


def test_an_instances_own_groups_replace_the_top_level_map(lab, daemons, pty_guests, c_fence_virt):
    """A listener instance's ``groups`` block is its static map (ours only: C has one map)."""
    guest, target = lab.start("guest"), lab.vm("target")
    tty = pty_guests.listen(guest.serial[0])
    daemons.ours_text(
        'fence_virtd {\n\tlistener = "fencing";\n\tbackend = "libvirt";\n}\n'
        'listeners {\n\tfencing {\n\t\tplugin = "serial";\n'
        f'\t\turi = "{lab.uri}";\n\t\tpath = "{lab.dir}";\n'
        f'\t\tgroups {{\n\t\t\tgroup {{\n\t\t\t\tuuid = "{guest.uuid}";\n'
        '\t\t\t\tuuid = "nothing-here";\n\t\t\t}\n\t\t}\n\t}\n}\n'
        f'backends {{\n\tlibvirt {{\n\t\turi = "{lab.uri}";\n\t}}\n}}\n'
        # the top-level map would allow it: the instance's own map decides
        f'groups {{\n\tgroup {{\n\t\tuuid = "{guest.uuid}";\n'
        f'\t\tuuid = "{target.name}";\n\t}}\n}}\n'
    )
    pty_guests.wait(tty)
    done = c_fence_virt(tty, "-o", "off", "-H", target.name, "-t", "20")
    assert outcome(done) == (3, "Permission denied\n", "")
    assert lab.state(target.name) == RUNNING
