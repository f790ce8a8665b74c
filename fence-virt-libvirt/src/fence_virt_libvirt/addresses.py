"""The IP addresses of the domains running on a hypervisor (for "local guests only").

Sources, from libvirt's ``virDomainInterfaceAddresses``: ``lease`` -- the DHCP leases of the
networks libvirt itself manages (its dnsmasq: authoritative, no guest cooperation) -- and
``arp`` -- the host's neighbour table for the domain's MAC addresses (also guests with
static addresses on a bridge, once they have sent a packet). Not ``agent``: the QEMU guest
agent reports what the guest *says* its addresses are, and the point of the check is not to
take a guest's word for where it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import libvirt

from fence_virt_libvirt.hypervisor import Hypervisor

__all__ = ["ADDRESS_SOURCES", "running_addresses"]

#: source name -> libvirt's VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_* value
ADDRESS_SOURCES = {
    "lease": libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
    "arp": libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
}


def running_addresses(
    hypervisors: Sequence[Hypervisor], sources: Iterable[str] = ("lease", "arp")
) -> frozenset[str]:
    """IP texts (as libvirt gives them) of every running domain's interfaces on each URI.

    A source a domain cannot answer (no lease, an error for that domain) adds nothing.

    :raises fence_virt.errors.BackendError: a URI cannot be reached or refuses to list.
    """
    codes = [ADDRESS_SOURCES[name] for name in sources]
    found: set[str] = set()
    for hypervisor in hypervisors:
        found |= hypervisor.call(lambda conn: _addresses(conn, codes))
    return frozenset(found)


def _addresses(conn: Any, codes: list[int]) -> set[str]:
    found: set[str] = set()
    for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        for code in codes:
            try:
                interfaces = domain.interfaceAddresses(code) or {}
            except libvirt.libvirtError:
                continue  # e.g. no leases for a network libvirt does not manage
            for interface in interfaces.values():
                found.update(entry["addr"] for entry in interface.get("addrs") or ())
    return found
