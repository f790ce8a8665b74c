"""Several URIs: a VM is found on whichever hypervisor has it; lists are concatenated.

testnode.xml and second-host.xml both hold vm2 (same UUID): shut off on the first, running
on the second, as after a migration that left the source's definition behind.
"""

from __future__ import annotations

import pytest

from fence_virt.errors import BackendError
from fence_virt.protocol import Response

VM2 = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def two(start_fencer, data_uri):
    return start_fencer(data_uri("testnode.xml"), data_uri("second-host.xml"))


@pytest.fixture
def dead_uri(tmp_path):
    return f"test+unix:///default?socket={tmp_path}/no-libvirtd-here"


def listing(fencer):
    return [(s.domain, s.state) for s in fencer.hostlist()]


def test_each_vm_is_found_on_its_own_hypervisor(two, fence):
    assert fence(two, "status", "vm1") is Response.SUCCESS  # first URI
    assert fence(two, "status", "vm4") is Response.SUCCESS  # second URI
    assert fence(two, "off", "vm4") is Response.SUCCESS
    assert fence(two, "status", "vm4") is Response.OFF
    assert fence(two, "status", "nosuch") is Response.FAIL


def test_hostlist_concatenates_every_uri_sorted_by_name(two):
    """C's list builder overwrote earlier URIs' entries; here every VM appears once per URI."""
    assert listing(two) == [
        ("vm1", 1),
        ("vm2", 5),  # first URI's copy first (stable sort)
        ("vm2", 1),
        ("vm3-with-a-long-name-0123456789", 3),
        ("vm4", 1),
        ("Zulu", 5),
    ]


def test_the_active_copy_wins_over_an_earlier_shut_off_one(two, fence):
    """C would answer OFF from the first URI's stale copy while vm2 runs on the second."""
    assert fence(two, "status", "vm2") is Response.SUCCESS
    assert fence(two, "status", VM2) is Response.SUCCESS
    assert fence(two, "off", "vm2") is Response.SUCCESS
    assert ("vm2", 1) not in listing(two)  # the running copy was destroyed
    assert fence(two, "status", "vm2") is Response.OFF
    assert fence(two, "on", "vm2") is Response.SUCCESS  # starts the first copy now
    assert listing(two)[1:3] == [("vm2", 1), ("vm2", 5)]


def test_an_unreachable_uri_does_not_hide_an_active_vm(start_fencer, data_uri, dead_uri, fence):
    fencer = start_fencer(dead_uri, data_uri("testnode.xml"))
    assert fence(fencer, "status", "vm1") is Response.SUCCESS
    assert fence(fencer, "off", "vm1") is Response.SUCCESS


def test_an_unreachable_uri_makes_off_and_unknown_answers_errors(
    start_fencer, data_uri, dead_uri, fence
):
    """vm2 is shut off here, but might run behind the URI that does not answer."""
    fencer = start_fencer(data_uri("testnode.xml"), dead_uri)
    for operation in ("status", "on", "off", "reboot"):
        with pytest.raises(BackendError, match=r"cannot tell where VM vm2 is: cannot connect to"):
            fence(fencer, operation, "vm2")
    with pytest.raises(BackendError, match="no-libvirtd-here"):
        fence(fencer, "status", "nosuch")
    with pytest.raises(BackendError, match="no-libvirtd-here"):
        fencer.hostlist()
    assert fencer.devstatus() is Response.FAIL
    assert fence(fencer, "status", "vm1") is Response.SUCCESS
