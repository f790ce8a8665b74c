"""running_addresses on libvirt's test driver (in-process; every running domain of
test:///default reports the interface address 192.168.122.3 from each source)."""

from __future__ import annotations

import libvirt
import pytest

from fence_virt.errors import BackendError
from fence_virt_libvirt import Hypervisor, running_addresses


def test_running_domains_addresses_from_leases_and_arp() -> None:
    assert running_addresses([Hypervisor("test:///default")]) == {"192.168.122.3"}
    assert running_addresses([Hypervisor("test:///default")], ["arp"]) == {"192.168.122.3"}


def test_a_domain_that_is_not_running_has_no_address() -> None:
    hypervisor = Hypervisor("test:///default")
    hypervisor.call(lambda conn: conn.lookupByName("test").destroy())
    try:
        assert running_addresses([hypervisor]) == frozenset()
    finally:  # test:///default is one state per process: leave it as found
        hypervisor.call(lambda conn: conn.lookupByName("test").create())


def test_an_unknown_source_and_an_unreachable_uri_are_errors() -> None:
    with pytest.raises(KeyError):
        running_addresses([Hypervisor("test:///default")], ["agent"])
    libvirt.registerErrorHandler(lambda *_: None, None)
    with pytest.raises(BackendError):
        running_addresses([Hypervisor("test:///nonexistent/node.xml")])
