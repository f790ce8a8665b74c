"""Every operation on libvirt's in-process test driver, ``test:///default``.

The driver keeps one shared instance per process while any connection is open, so the
``inspect`` connection below sees (and changes) exactly what the backend fences.
"""

from __future__ import annotations

import libvirt
import pytest

from fence_virt.errors import LocalError
from fence_virt.protocol import HostState, Response

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
SHUTOFF, RUNNING = libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_RUNNING


@pytest.fixture
def inspect():
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@pytest.fixture
def backend(start_backend, inspect):
    del inspect  # opened first, so the backend shares its state
    return start_backend("test:///default")


def state(conn, name="test"):
    return conn.lookupByName(name).state()[0]


def test_status_off_on_cycle(backend, inspect, fence):
    assert fence(backend, "status", "test") is Response.SUCCESS
    assert fence(backend, "off", "test") is Response.SUCCESS
    assert state(inspect) == SHUTOFF
    assert fence(backend, "status", "test") is Response.OFF
    assert fence(backend, "off", "test") is Response.SUCCESS  # already off: success, as C
    assert fence(backend, "on", "test") is Response.SUCCESS
    assert state(inspect) == RUNNING
    assert fence(backend, "on", "test") is Response.SUCCESS  # already on
    assert fence(backend, "status", "test") is Response.SUCCESS


def test_reboot_restarts_a_running_vm(backend, inspect, fence):
    before = inspect.lookupByName("test").ID()
    assert fence(backend, "reboot", "test") is Response.SUCCESS
    dom = inspect.lookupByName("test")
    assert dom.state()[0] == RUNNING
    assert dom.ID() != before  # a new run: it was really destroyed and started


def test_reboot_leaves_an_off_vm_off(backend, inspect, fence):
    inspect.lookupByName("test").destroy()
    assert fence(backend, "reboot", "test") is Response.SUCCESS
    assert state(inspect) == SHUTOFF


def test_reboot_recreates_a_transient_vm_from_its_xml(backend, inspect, fence):
    xml = inspect.lookupByName("test").XMLDesc(0)
    xml = xml.replace("<name>test</name>", "<name>transient1</name>")
    xml = xml.replace(TEST_UUID, "7e57a11e-0000-4000-8000-000000000001")
    dom = inspect.createXML(xml, 0)
    assert not dom.isPersistent()
    before = dom.ID()
    assert fence(backend, "reboot", "transient1") is Response.SUCCESS
    again = inspect.lookupByName("transient1")
    assert again.state()[0] == RUNNING
    assert not again.isPersistent()
    assert again.UUIDString() == "7e57a11e-0000-4000-8000-000000000001"
    assert again.ID() != before


def test_off_of_a_transient_vm_removes_it_and_succeeds(backend, inspect, fence):
    xml = inspect.lookupByName("test").XMLDesc(0).replace("<name>test</name>", "<name>t2</name>")
    inspect.createXML(xml.replace(TEST_UUID, "7e57a11e-0000-4000-8000-000000000002"), 0)
    assert fence(backend, "off", "t2") is Response.SUCCESS
    assert "t2" not in [d.name() for d in inspect.listAllDomains()]
    assert fence(backend, "status", "t2") is Response.FAIL  # gone: unknown


def test_by_uuid_with_and_without_the_flag(backend, inspect, fence):
    assert fence(backend, "off", TEST_UUID) is Response.SUCCESS  # canonical text: by UUID
    assert state(inspect) == SHUTOFF
    assert fence(backend, "status", TEST_UUID.upper()) is Response.OFF
    undashed = TEST_UUID.replace("-", "")
    assert fence(backend, "on", undashed, by_uuid=True) is Response.SUCCESS
    assert state(inspect) == RUNNING
    assert fence(backend, "status", undashed) is Response.FAIL  # no flag: a (missing) name


def test_uuid_flag_on_a_name_falls_back_to_the_name(backend, fence):
    assert fence(backend, "status", "test", by_uuid=True) is Response.SUCCESS


@pytest.mark.parametrize("operation", ["off", "on", "reboot", "status"])
def test_unknown_vm_fails(backend, fence, operation, caplog):
    assert fence(backend, operation, "nosuch") is Response.FAIL
    assert "nosuch: no such VM on test:///default" in caplog.text


def test_status_of_an_unknown_uuid_fails(backend, fence):
    assert fence(backend, "status", "00000000-0000-4000-8000-000000000000") is Response.FAIL


def test_null_fails_as_in_c(backend, fence):
    assert fence(backend, "null", "test") is Response.FAIL


def test_devstatus_and_hostlist(backend, inspect):
    assert backend.fence_virt_backend_devstatus() is Response.SUCCESS
    assert list(backend.fence_virt_backend_hostlist(requester="t")) == [
        HostState("test", TEST_UUID, RUNNING)
    ]
    inspect.lookupByName("test").destroy()
    assert list(backend.fence_virt_backend_hostlist(requester="t")) == [
        HostState("test", TEST_UUID, SHUTOFF)
    ]


def test_hooks_before_start_are_a_local_error(new_backend, fence):
    with pytest.raises(LocalError):
        fence(new_backend(), "status", "test")
