"""``local_guests_only``: serve a multicast request only if its connect-back address belongs
to a domain running on this host.

Every host of a guest cluster's hypervisors is in the multicast group and would connect
back to any request; ``fence_xvm`` takes the first host that does. With this check a host
stays silent for a guest it does not run, so only a host holding the requesting guest
answers (C has no such check). The addresses come from libvirt
(:func:`fence_virt_libvirt.running_addresses`: DHCP leases of libvirt's networks and the
host's ARP table, never the guest agent, which reports what the guest claims) and are read
again for every authentic request, so a guest that just started or moved is seen at once.
Needs the ``fence-virt-libvirt`` library (the ``local-guests`` extra).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

from fence_virt.errors import ConfigError

__all__ = ["LocalGuests", "same_address"]


def same_address(first: str, second: str) -> bool:
    """Whether two IP texts name one address (an IPv4-mapped IPv6 address is its IPv4)."""
    try:
        return _plain(ip_address(first)) == _plain(ip_address(second))
    except ValueError:
        return False


def _plain(address: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class LocalGuests:
    """Answers whether an address belongs to a running domain of ``uris``."""

    def __init__(self, uris: Sequence[str]) -> None:
        """:raises fence_virt.errors.ConfigError: fence-virt-libvirt is not installed."""
        try:
            from fence_virt_libvirt import (  # noqa: PLC0415 - an optional dependency
                Hypervisor,
                running_addresses,
            )
        except ImportError as exc:
            raise ConfigError(
                "local_guests_only needs the fence-virt-libvirt library "
                "(pip install 'fence-virt-listener-multicast[local-guests]')"
            ) from exc
        self.uris = tuple(uris)
        hypervisors = [Hypervisor(uri) for uri in self.uris]
        self._lookup: Callable[[], frozenset[str]] = lambda: running_addresses(hypervisors)

    async def runs(self, host: str) -> bool:
        """Whether ``host`` (IP text) is an address of a domain running here.

        :raises fence_virt.errors.BackendError: libvirt cannot answer (then nothing is
            served: the check fails closed).
        """
        addresses = await asyncio.to_thread(self._lookup)
        return any(same_address(host, address) for address in addresses)
