"""Every libvirt domain state, and the multi-domain node file the C suite was run against.

File URIs (``test:///PATH``) give each connection its own copy of the node, so results are
read back through the Fencer itself.
"""

from __future__ import annotations

import pytest

from fence_virt.protocol import Response

# name in states.xml == state name; number == virDomainState
STATES = {
    "nostate": 0,
    "running": 1,
    "blocked": 2,
    "paused": 3,
    "shutdown": 4,
    "shutoff": 5,
    "crashed": 6,
    "pmsuspended": 7,
}
ACTIVE = [name for name in STATES if name != "shutoff"]


@pytest.fixture
def states(start_fencer, data_uri):
    return start_fencer(data_uri("states.xml"))


@pytest.fixture
def node(start_fencer, data_uri):
    return start_fencer(data_uri("testnode.xml"))


def listed(fencer):
    return {s.domain: s.state for s in fencer.hostlist()}


def test_hostlist_sends_raw_state_numbers(states):
    assert listed(states) == STATES


@pytest.mark.parametrize("name", ACTIVE)
def test_status_of_every_state_but_shutoff_is_on(states, fence, name):
    assert fence(states, "status", name) is Response.SUCCESS


def test_status_of_shutoff_is_off(states, fence):
    assert fence(states, "status", "shutoff") is Response.OFF


@pytest.mark.parametrize("name", ACTIVE)
def test_off_destroys_a_vm_in_any_active_state(states, fence, name):
    assert fence(states, "off", name) is Response.SUCCESS
    assert listed(states)[name] == STATES["shutoff"]
    assert fence(states, "status", name) is Response.OFF


@pytest.mark.parametrize("name", ACTIVE)
def test_on_leaves_any_active_state_alone(states, fence, name):
    assert fence(states, "on", name) is Response.SUCCESS
    assert listed(states)[name] == STATES[name]


def test_on_starts_a_shut_off_vm(states, fence):
    assert fence(states, "on", "shutoff") is Response.SUCCESS
    assert listed(states)["shutoff"] == STATES["running"]


@pytest.mark.parametrize("name", ACTIVE)
def test_reboot_from_any_active_state_ends_running(states, fence, name):
    assert fence(states, "reboot", name) is Response.SUCCESS
    assert listed(states)[name] == STATES["running"]


def test_reboot_of_a_shut_off_vm_does_not_start_it(states, fence):
    assert fence(states, "reboot", "shutoff") is Response.SUCCESS
    assert listed(states)["shutoff"] == STATES["shutoff"]


def test_node_file_matches_the_c_suite_run(node, fence):
    """Same answers as C fence_virtd gave on this file (tests/data/PROVENANCE.md)."""
    long_name = "vm3-with-a-long-name-0123456789"
    assert listed(node) == {"vm1": 1, "vm2": 5, long_name: 3}
    assert [fence(node, "status", n) for n in ("vm1", "vm2", long_name)] == [
        Response.SUCCESS,
        Response.OFF,
        Response.SUCCESS,  # paused counts as on
    ]
    assert fence(node, "on", "vm2") is Response.SUCCESS
    assert fence(node, "off", "vm1") is Response.SUCCESS
    assert fence(node, "reboot", "vm1") is Response.SUCCESS  # off: stays off
    assert fence(node, "reboot", long_name) is Response.SUCCESS
    assert fence(node, "on", long_name) is Response.SUCCESS
    assert listed(node) == {"vm1": 5, "vm2": 1, long_name: 1}


def test_node_file_by_uuid(node, fence):
    vm2 = "22222222-2222-2222-2222-222222222222"
    assert fence(node, "status", vm2, by_uuid=True) is Response.OFF
    assert fence(node, "on", vm2) is Response.SUCCESS
    assert fence(node, "status", vm2) is Response.SUCCESS
    assert fence(node, "off", vm2, by_uuid=True) is Response.SUCCESS
    assert listed(node)["vm2"] == 5


def test_hostlist_is_sorted_by_name_case_insensitively(start_fencer, data_uri):
    fencer = start_fencer(data_uri("second-host.xml"))
    names = [s.domain for s in fencer.hostlist()]
    assert names == ["vm2", "vm4", "Zulu"]  # a plain sort would put "Zulu" first
