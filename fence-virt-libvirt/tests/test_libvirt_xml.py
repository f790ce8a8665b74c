"""Reading a domain's XML (what the serial and vmchannel listeners parse for domain sockets)
and listing one hypervisor's domains, on libvirt's in-process test driver."""

from __future__ import annotations

import libvirt
import pytest

from fence_virt.errors import BackendError
from fence_virt.protocol import HostState
from fence_virt_libvirt import Hypervisor, domain_xml, list_domains

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
VNC_UUID = "7e57a11e-0000-4000-8000-0000000000f1"


@pytest.fixture
def default():
    """test:///default twice: ``(Hypervisor under test, our own connection)``; while ours is
    open the driver keeps one state, so both see the same domains."""
    conn = libvirt.open("test:///default")
    hv = Hypervisor("test:///default")
    yield hv, conn
    hv.close()
    conn.close()


@pytest.fixture
def vnc_vm(default):
    """A transient running domain whose VNC password is a secret."""
    _, conn = default
    xml = conn.lookupByName("test").XMLDesc(0)
    xml = xml.replace("<name>test</name>", "<name>vnc</name>").replace(TEST_UUID, VNC_UUID)
    xml = xml.replace("</devices>", "<graphics type='vnc' port='-1' passwd='s3cret'/></devices>")
    dom = conn.createXML(xml, 0)
    yield VNC_UUID
    dom.destroy()


def test_live_xml_of_a_running_domain(default):
    hv, _ = default
    xml = domain_xml(hv, TEST_UUID)
    assert xml is not None
    assert xml.startswith("<domain type='test' id=")  # live: it has a run id
    assert "<name>test</name>" in xml
    assert f"<uuid>{TEST_UUID}</uuid>" in xml


def test_inactive_xml_is_the_next_start_s_definition(default):
    hv, _ = default
    xml = domain_xml(hv, TEST_UUID, inactive=True)
    assert xml is not None
    assert xml.startswith("<domain type='test'>")


def test_secrets_only_on_request(default, vnc_vm):
    hv, _ = default
    plain = domain_xml(hv, vnc_vm)
    assert plain is not None
    assert "<graphics type='vnc'" in plain
    assert "s3cret" not in plain
    assert "passwd='s3cret'" in (domain_xml(hv, vnc_vm, secure=True) or "")


def test_unknown_uuid_is_none(default):
    hv, _ = default
    assert domain_xml(hv, "00000000-0000-4000-8000-000000000000") is None


def test_unreachable_uri_is_a_backend_error(tmp_path):
    hv = Hypervisor(f"test+unix:///default?socket={tmp_path}/no-libvirtd-here")
    with pytest.raises(BackendError, match="no-libvirtd-here"):
        domain_xml(hv, TEST_UUID)


def test_list_domains_of_one_uri_active_and_inactive_with_raw_states(data_uri, default):
    hv, conn = default
    conn.lookupByName("test").suspend()
    assert list_domains(hv) == [HostState("test", TEST_UUID, libvirt.VIR_DOMAIN_PAUSED)]
    node = Hypervisor(data_uri("testnode.xml"))
    try:
        assert sorted(list_domains(node), key=lambda s: s.domain) == [
            HostState("vm1", "11111111-1111-1111-1111-111111111111", 1),
            HostState("vm2", "22222222-2222-2222-2222-222222222222", 5),
            HostState("vm3-with-a-long-name-0123456789", "33333333-3333-3333-3333-333333333333", 3),
        ]
    finally:
        node.close()
