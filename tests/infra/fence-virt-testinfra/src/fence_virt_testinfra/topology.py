"""Namespaces joined by veth pairs: a guest talking to its host across a real link.

Addresses come from 198.51.100.0/24 (TEST-NET-2) and 2001:db8::/32 (documentation), so nothing
here can reach a real network. IPv6 duplicate address detection is switched off on every end:
a datagram sent while an address is still tentative would be lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.processes import wait_until

__all__ = ["GuestHost", "bridged_hosts", "guest_and_host", "veth_pair"]


def veth_pair(
    left: NetNS,
    right: NetNS,
    names: tuple[str, str],
    addresses: tuple[str, str],
    *more: tuple[str, str],
) -> None:
    """A veth ``names`` between two namespaces, addressed, up and carrying.

    ``addresses`` (and each of ``more``) holds one ``ADDRESS/PREFIX`` for each end, IPv4 or
    IPv6. Returns once both ends report carrier (the kernel says so asynchronously, up to a
    second later; multicast sent before that is lost) and no address is tentative.
    TimeoutError after 10 s.
    """
    left.add_veth(right, *names)
    for index, (space, name) in enumerate(zip((left, right), names, strict=True)):
        space.run("sysctl", "-qw", f"net.ipv6.conf.{name}.accept_dad=0")
        for address in (addresses[index], *(pair[index] for pair in more)):
            extra = ["nodad"] if ":" in address else []
            space.ip("addr", "add", address, "dev", name, *extra)
        space.ip("link", "set", name, "up")
    for space, name in zip((left, right), names, strict=True):
        wait_until(_link_up(space, name), 10, f"{name} in {space.name} to come up")
        wait_until(_settled(space), 10, f"IPv6 DAD in {space.name}")


def _link_up(space: NetNS, name: str) -> Callable[[], bool]:
    def up() -> bool:
        return space.run("cat", f"/sys/class/net/{name}/operstate").stdout.strip() == "up"

    return up


def _settled(space: NetNS) -> Callable[[], bool]:
    def settled() -> bool:
        return not space.run("ip", "-6", "addr", "show", "tentative").stdout.strip()

    return settled


@dataclass
class GuestHost:
    """Guest ``gveth`` 198.51.100.11 / 2001:db8:5::11 <-> host ``hveth`` 198.51.100.1 / ::1.

    The guest routes multicast (224.0.0.0/4) through its veth, as a VM's only NIC would.
    """

    guest: NetNS
    host: NetNS
    guest_ip: str = "198.51.100.11"
    host_ip: str = "198.51.100.1"
    guest_ip6: str = "2001:db8:5::11"
    host_ip6: str = "2001:db8:5::1"
    host_if: str = "hveth"
    guest_if: str = "gveth"
    extra_guest_ips: list[str] = field(default_factory=list)

    def add_guest_ip(self, ip: str) -> None:
        """Another IPv4 address (/24) on the guest's veth."""
        self.guest.ip("addr", "add", f"{ip}/24", "dev", self.guest_if)
        self.extra_guest_ips.append(ip)


@contextlib.contextmanager
def guest_and_host() -> Iterator[GuestHost]:
    """A fresh :class:`GuestHost`; both namespaces are deleted on exit."""
    with netns("mcg") as guest, netns("mch") as host:
        pair = GuestHost(guest, host)
        veth_pair(
            guest,
            host,
            (pair.guest_if, pair.host_if),
            (f"{pair.guest_ip}/24", f"{pair.host_ip}/24"),
            (f"{pair.guest_ip6}/64", f"{pair.host_ip6}/64"),
        )
        guest.ip("route", "add", "224.0.0.0/4", "dev", pair.guest_if)
        yield pair


#: the client's address on its bridge in :func:`bridged_hosts`; host ``i`` (from 1) is ``.1i``
BRIDGE_CLIENT_IP = "198.51.100.1"


@contextlib.contextmanager
def bridged_hosts(count: int = 2) -> Iterator[tuple[NetNS, list[NetNS]]]:
    """A client namespace and ``count`` host namespaces on one link, as guests and hosts of
    one multicast group: the client's bridge ``br0`` (198.51.100.1/24, multicast snooping
    off, 224.0.0.0/4 routed through it) and one veth per host, ``ub<i>`` on the bridge and
    ``uv<i>`` in host ``i`` (198.51.100.1<i>/24, 224.0.0.0/4 routed through it), ``i`` from
    1. Yields ``(client, hosts)``; every namespace is deleted on exit."""
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(netns("uc"))
        client.ip("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        client.ip("addr", "add", f"{BRIDGE_CLIENT_IP}/24", "dev", "br0")
        client.ip("link", "set", "br0", "up")
        client.ip("route", "add", "224.0.0.0/4", "dev", "br0")
        hosts = []
        for i in range(1, count + 1):
            host = stack.enter_context(netns("uh"))
            host.add_veth(client, f"uv{i}", f"ub{i}")
            client.ip("link", "set", f"ub{i}", "master", "br0", "up")
            host.ip("addr", "add", f"198.51.100.{10 + i}/24", "dev", f"uv{i}")
            host.ip("link", "set", f"uv{i}", "up")
            host.ip("route", "add", "224.0.0.0/4", "dev", f"uv{i}")
            hosts.append(host)
        yield client, hosts
