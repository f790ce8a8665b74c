"""Every operation on libvirt's in-process test driver, ``test:///default``.

The driver keeps one shared instance per process while any connection is open, so the
``inspect`` connection below sees (and changes) exactly what the Fencer fences.
"""

from __future__ import annotations

import libvirt
import pytest

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
def fencer(start_fencer, inspect):
    del inspect  # opened first, so the Fencer shares its state
    return start_fencer("test:///default")


def state(conn, name="test"):
    return conn.lookupByName(name).state()[0]


def test_status_off_on_cycle(fencer, inspect, fence):
    assert fence(fencer, "status", "test") is Response.SUCCESS
    assert fence(fencer, "off", "test") is Response.SUCCESS
    assert state(inspect) == SHUTOFF
    assert fence(fencer, "status", "test") is Response.OFF
    assert fence(fencer, "off", "test") is Response.SUCCESS  # already off: success, as C
    assert fence(fencer, "on", "test") is Response.SUCCESS
    assert state(inspect) == RUNNING
    assert fence(fencer, "on", "test") is Response.SUCCESS  # already on
    assert fence(fencer, "status", "test") is Response.SUCCESS


def test_reboot_restarts_a_running_vm(fencer, inspect, fence):
    before = inspect.lookupByName("test").ID()
    assert fence(fencer, "reboot", "test") is Response.SUCCESS
    dom = inspect.lookupByName("test")
    assert dom.state()[0] == RUNNING
    assert dom.ID() != before  # a new run: it was really destroyed and started


def test_reboot_leaves_an_off_vm_off(fencer, inspect, fence):
    inspect.lookupByName("test").destroy()
    assert fence(fencer, "reboot", "test") is Response.SUCCESS
    assert state(inspect) == SHUTOFF


def test_reboot_recreates_a_transient_vm_from_its_xml(fencer, inspect, fence):
    xml = inspect.lookupByName("test").XMLDesc(0)
    xml = xml.replace("<name>test</name>", "<name>transient1</name>")
    xml = xml.replace(TEST_UUID, "7e57a11e-0000-4000-8000-000000000001")
    dom = inspect.createXML(xml, 0)
    assert not dom.isPersistent()
    before = dom.ID()
    assert fence(fencer, "reboot", "transient1") is Response.SUCCESS
    again = inspect.lookupByName("transient1")
    assert again.state()[0] == RUNNING
    assert not again.isPersistent()
    assert again.UUIDString() == "7e57a11e-0000-4000-8000-000000000001"
    assert again.ID() != before


def test_off_of_a_transient_vm_removes_it_and_succeeds(fencer, inspect, fence):
    xml = inspect.lookupByName("test").XMLDesc(0).replace("<name>test</name>", "<name>t2</name>")
    inspect.createXML(xml.replace(TEST_UUID, "7e57a11e-0000-4000-8000-000000000002"), 0)
    assert fence(fencer, "off", "t2") is Response.SUCCESS
    assert "t2" not in [d.name() for d in inspect.listAllDomains()]
    assert fence(fencer, "status", "t2") is Response.FAIL  # gone: unknown


def test_by_uuid_with_and_without_the_flag(fencer, inspect, fence):
    assert fence(fencer, "off", TEST_UUID) is Response.SUCCESS  # canonical text: by UUID
    assert state(inspect) == SHUTOFF
    assert fence(fencer, "status", TEST_UUID.upper()) is Response.OFF
    undashed = TEST_UUID.replace("-", "")
    assert fence(fencer, "on", undashed, by_uuid=True) is Response.SUCCESS
    assert state(inspect) == RUNNING
    assert fence(fencer, "status", undashed) is Response.FAIL  # no flag: a (missing) name


def test_uuid_flag_on_a_name_falls_back_to_the_name(fencer, fence):
    assert fence(fencer, "status", "test", by_uuid=True) is Response.SUCCESS


@pytest.mark.parametrize("operation", ["off", "on", "reboot", "status"])
def test_unknown_vm_fails(fencer, fence, operation, caplog):
    assert fence(fencer, operation, "nosuch") is Response.FAIL
    assert "nosuch: no such VM on test:///default" in caplog.text


def test_status_of_an_unknown_uuid_fails(fencer, fence):
    assert fence(fencer, "status", "00000000-0000-4000-8000-000000000000") is Response.FAIL


def test_devstatus_and_hostlist(fencer, inspect):
    assert fencer.devstatus() is Response.SUCCESS
    assert list(fencer.hostlist()) == [HostState("test", TEST_UUID, RUNNING)]
    inspect.lookupByName("test").destroy()
    assert list(fencer.hostlist()) == [HostState("test", TEST_UUID, SHUTOFF)]


def test_reboot_of_a_transient_vm_keeps_its_secrets(fencer, inspect, fence):
    """The saved XML includes the VNC password: the re-created VM must still demand it."""
    xml = inspect.lookupByName("test").XMLDesc(0)
    xml = xml.replace("<name>test</name>", "<name>vnc</name>")
    xml = xml.replace(TEST_UUID, "7e57a11e-0000-4000-8000-000000000003")
    xml = xml.replace("</devices>", "<graphics type='vnc' port='-1' passwd='s3cret'/></devices>")
    inspect.createXML(xml, 0)
    assert fence(fencer, "reboot", "vnc") is Response.SUCCESS
    again = inspect.lookupByName("vnc")
    assert "passwd='s3cret'" in again.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    again.destroy()
