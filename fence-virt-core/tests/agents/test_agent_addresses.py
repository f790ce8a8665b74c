"""Local address enumeration over netlink, checked against ``ip -o addr`` in a namespace."""

from __future__ import annotations

import json
import sys

import pytest

from fence_virt_testinfra.netns import NetNS, netns

pytestmark = pytest.mark.netns

LIST = (
    "import socket, json; from fence_virt.agents.addresses import local_addresses; "
    "print(json.dumps({f: [(a.text, a.ifindex) for a in local_addresses(getattr(socket, f))] "
    "for f in ('AF_INET', 'AF_INET6')}))"
)


def addresses_in(space: NetNS) -> dict[str, list[list[object]]]:
    return json.loads(space.run(sys.executable, "-c", LIST).stdout)


def ifindex(space: NetNS, name: str) -> int:
    return int(space.run("cat", f"/sys/class/net/{name}/ifindex").stdout)


def test_addresses_of_a_namespace(ns: NetNS) -> None:
    with netns("peer") as peer:
        ns.add_veth(peer, "fvta0", "fvtb0")
        ns.ip("addr", "add", "198.51.100.10/24", "dev", "fvta0")
        ns.ip("addr", "add", "198.51.100.11/24", "dev", "fvta0")
        ns.ip("addr", "add", "2001:db8:1::10/64", "dev", "fvta0", "nodad")
        ns.ip("addr", "add", "fe80::1234/64", "dev", "fvta0", "nodad")
        ns.ip("addr", "add", "febf::1/64", "dev", "fvta0", "nodad")
        ns.ip("link", "set", "fvta0", "up")
        found = addresses_in(ns)
        link = ifindex(ns, "fvta0")
        assert found["AF_INET"] == [
            ["127.0.0.1", 1],
            ["198.51.100.10", link],
            ["198.51.100.11", link],
        ]
        # ::1 and link-local fe80::/10 (also the kernel's own fe80:: address) are left out
        assert found["AF_INET6"] == [["2001:db8:1::10", link]]
        shown = ns.run("ip", "-o", "addr", "show").stdout
        assert "fe80::1234" in shown
        assert "::1/128" in shown


def test_point_to_point_uses_the_local_end(ns: NetNS) -> None:
    """IFA_ADDRESS is the peer on a point-to-point link; we send from IFA_LOCAL."""
    ns.ip("link", "add", "fvtp0", "type", "veth", "peer", "name", "fvtp1")
    try:
        ns.ip("addr", "add", "198.51.100.20", "peer", "198.51.100.21/32", "dev", "fvtp0")
        texts = [text for text, _index in addresses_in(ns)["AF_INET"]]
        assert "198.51.100.20" in texts
        assert "198.51.100.21" not in texts
    finally:
        ns.ip("link", "del", "fvtp0")
