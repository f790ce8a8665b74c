"""Several URIs: a VM is found on whichever hypervisor has it; lists are concatenated.

testnode.xml and second-host.xml both hold vm2 (same UUID): shut off on the first, running
on the second, as after a migration that left the source's definition behind.
"""

from __future__ import annotations

import logging

import pytest

from fence_virt.errors import BackendError
from fence_virt.protocol import Response
from fence_virt_libvirt import current_state

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


# --- several copies of one VM (issue: "the same VM on two URIs") -----------------------------

MIG = "a1a1a1a1-0000-4000-8000-000000000001"
TWIN_A = "a1a1a1a1-0000-4000-8000-0000000000a2"
TWIN_B = "a1a1a1a1-0000-4000-8000-0000000000b2"


@pytest.fixture
def copies(start_fencer, data_uri):
    return start_fencer(data_uri("copies-a.xml"), data_uri("copies-b.xml"))


def states_of(fencer, name):
    """The state of each copy named ``name``, in URI order."""
    return [s.state for s in fencer.hostlist() if s.domain == name]


def test_off_destroys_every_copy_and_reads_each_back(copies, fence):
    """The migration source paused on the first URI, the running copy on the second: C and
    our first version destroyed the paused copy only, answered success, and status then
    said ON."""
    assert states_of(copies, "mig") == [3, 1]
    assert fence(copies, "status", "mig") is Response.SUCCESS
    assert fence(copies, "off", "mig") is Response.SUCCESS
    assert states_of(copies, "mig") == [5, 5]
    assert fence(copies, "status", "mig") is Response.OFF
    assert fence(copies, "status", MIG) is Response.OFF


def test_off_by_uuid_destroys_every_copy_too(copies, fence):
    assert fence(copies, "off", MIG, by_uuid=True) is Response.SUCCESS
    assert states_of(copies, "mig") == [5, 5]


def test_status_is_on_while_any_copy_runs(start_fencer, data_uri, fence):
    """Only the second URI's copy runs: status ON, whatever the first says."""
    fencer = start_fencer(data_uri("copies-a.xml"), data_uri("copies-b.xml"))
    first = fencer.hypervisors[0]
    first.call(lambda conn: conn.lookupByUUIDString(MIG).destroy())
    assert states_of(fencer, "mig") == [5, 1]
    assert fence(fencer, "status", "mig") is Response.SUCCESS
    assert fence(fencer, "on", "mig") is Response.SUCCESS  # on already: nothing started
    assert states_of(fencer, "mig") == [5, 1]


def test_a_copy_renamed_on_another_uri_is_found_by_its_uuid(copies, fence):
    assert fence(copies, "off", "renamed-a") is Response.SUCCESS
    assert states_of(copies, "renamed-a") == [5]
    assert states_of(copies, "renamed-b") == [5]


def test_reboot_restarts_one_copy_after_every_copy_was_off(copies, fence, caplog):
    caplog.set_level(logging.INFO, logger="fence_virt_libvirt")
    assert fence(copies, "reboot", "mig") is Response.SUCCESS
    assert states_of(copies, "mig") == [1, 5]  # the first running copy (URI order) restarted
    assert caplog.text.count("destroying VM mig") == 2
    assert caplog.text.count("starting VM mig") == 1


@pytest.mark.parametrize("operation", ["off", "on", "reboot", "status"])
def test_a_name_meaning_two_vms_is_refused(copies, fence, caplog, operation):
    """Two different VMs share a name on two URIs: acting on one would leave the other
    running; the request must name a UUID."""
    assert fence(copies, operation, "twin") is Response.FAIL
    assert states_of(copies, "twin") == [1, 1]  # nothing was touched
    assert f"{operation} twin: name twin means 2 different VMs: {TWIN_A} on test://" in caplog.text
    assert "refused (address the VM by UUID)" in caplog.text


def test_a_uuid_addresses_one_of_two_vms_sharing_a_name(copies, fence):
    assert fence(copies, "off", TWIN_B) is Response.SUCCESS
    assert states_of(copies, "twin") == [1, 5]
    assert fence(copies, "status", TWIN_A) is Response.SUCCESS
    assert fence(copies, "status", TWIN_B) is Response.OFF


@pytest.mark.parametrize("operation", ["off", "reboot"])
def test_a_vm_seen_only_paused_beside_an_unreachable_uri_is_not_fenced(
    start_fencer, data_uri, dead_uri, fence, operation
):
    """The migration's paused source answers, the URI of the running copy does not:
    destroying the paused copy and answering success would leave the VM running there."""
    fencer = start_fencer(data_uri("copies-a.xml"), dead_uri)
    with pytest.raises(
        BackendError,
        match=r"VM mig .* runs on no URI that answers, and it may run where a URI cannot "
        r"answer \(cannot connect to .*no-libvirtd-here.*\): nothing done",
    ):
        fence(fencer, operation, "mig")
    assert current_state(fencer.hypervisors[0], MIG) == 3  # the paused copy: untouched
    assert fence(fencer, "status", "mig") is Response.SUCCESS  # paused counts as on
    assert fence(fencer, "on", "mig") is Response.SUCCESS  # on already: nothing started
    assert fence(fencer, "off", "renamed-a") is Response.SUCCESS  # running here: fenced


def test_a_crashed_vm_beside_an_unreachable_uri_is_on_but_not_fenced(
    start_fencer, data_uri, dead_uri, fence
):
    """Crashed is not shut off: status says ON (as with every URI answering); off refuses,
    since the VM may run behind the URI that does not answer."""
    fencer = start_fencer(data_uri("states.xml"), dead_uri)
    assert fence(fencer, "status", "crashed") is Response.SUCCESS
    with pytest.raises(BackendError, match="runs on no URI that answers"):
        fence(fencer, "off", "crashed")
