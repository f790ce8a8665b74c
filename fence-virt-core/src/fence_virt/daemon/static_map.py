"""Static permission maps: which requester may fence which VM (c-suite-spec §5.7).

Config::

    groups {
        group {
            name = "cluster1";
            ip = "198.51.100.11";            # requesters: IP text (multicast/tcp) or CID (vsock)
            uuid = "vm1";                    # targets: VM UUIDs or names; serial requesters
        }
    }

Without any group every authenticated requester may act on every VM (as in C). A requester
that looks like a canonical UUID is matched against ``uuid`` entries, anything else against
``ip`` entries. Comparisons are case-insensitive; where the requester and an ``ip`` entry
both parse as IP addresses they are compared as addresses (C compares the text): an
IPv4-mapped IPv6 address is its IPv4 address, so ``127.0.0.1``, ``::ffff:127.0.0.1`` and
``::ffff:7f00:1`` are one requester, and ``2001:DB8::1`` is ``2001:db8:0::1``. Anything
else (a vsock CID, a name) is compared as text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.types import domain_uuid

__all__ = ["Group", "StaticMap", "address_of", "is_canonical_uuid"]


def is_canonical_uuid(text: str) -> bool:
    """True for the 36-character hyphenated form C's map check treats as a UUID."""
    return domain_uuid(text) is not None


log = logging.getLogger("fence_virt.daemon")

#: the keys a group block may hold
_GROUP_KEYS = frozenset({"name", "ip", "uuid"})


def _warn_unknown_keys(group: ConfigNode) -> None:
    """Unknown keys, and a repeated ``name`` (the last wins, as in C), each one warning."""
    for entry in group.values:
        if entry.key.casefold() not in _GROUP_KEYS:
            log.warning(
                "%s:%d: unknown key %r in a groups/group block (known: ip, name, uuid)",
                group.source,
                entry.line,
                entry.key,
            )
    names = group.values_named("name")
    if len(names) > 1:
        log.warning(
            "%s:%d: key 'name' in a groups/group block is written %d times (also at line%s "
            "%s): the last one is used",
            group.source,
            names[-1].line,
            len(names),
            "s" if len(names) > 2 else "",
            ", ".join(str(entry.line) for entry in names[:-1]),
        )


def address_of(text: str) -> IPv4Address | IPv6Address | None:
    """The IP address ``text`` writes, an IPv4-mapped IPv6 address as its IPv4 address;
    None when it is not an IP address (a vsock CID, a name)."""
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Group:
    name: str
    uuids: frozenset[str]
    ips: frozenset[str]
    #: the ``ip`` entries that are IP addresses, as :func:`address_of` gives them
    addresses: frozenset[IPv4Address | IPv6Address] = field(default=frozenset())

    def has_requester(self, requester: str) -> bool:
        if is_canonical_uuid(requester):
            return requester.casefold() in self.uuids
        if requester.casefold() in self.ips:
            return True
        address = address_of(requester)
        return address is not None and address in self.addresses

    def has_target(self, domain: str, name: str | None = None) -> bool:
        return domain.casefold() in self.uuids or (
            name is not None and name.casefold() in self.uuids
        )


@dataclass(frozen=True)
class StaticMap:
    groups: tuple[Group, ...] = ()

    @classmethod
    def from_config(cls, config: ConfigTree) -> StaticMap:
        """The top-level ``groups`` block (C's one map); open when there is none."""
        return cls.from_node(config.child("groups"))

    @classmethod
    def from_node(cls, node: ConfigNode | None, *, instance: str | None = None) -> StaticMap:
        """The map a ``groups { group { ... } ... }`` block describes; open for ``None``.

        :param instance: the listener instance whose own block this is, or ``None`` for the
            top-level map. An instance's map replaces the top-level one, so an instance's
            ``groups`` block without a ``group`` would silently open every VM to every guest:
            it is an error, where the top-level one (C's meaning: open) is only a warning.
        :raises fence_virt.errors.ConfigError: a block other than ``group`` inside (a
            misspelling would drop a restriction), or an instance's empty map (file:line).
        """
        if node is None:
            return cls()
        for child in node.children:
            if child.name.casefold() != "group":
                raise child.error(None, f"unknown block {child.name!r} in groups (only group)")
        found = node.children_named("group")
        if not found and instance is not None:
            raise node.error(
                None,
                f"listeners/{instance}: its groups block has no group, which would let every "
                "guest fence every VM: add groups, or remove the block to use the top-level map",
            )
        if not found:
            log.warning(
                "%s:%d: the groups block has no group: every requester may fence every VM",
                node.source,
                node.line,
            )
        groups = []
        for index, group in enumerate(found, start=1):
            _warn_unknown_keys(group)
            name = group.get("@name") or group.value or f"unnamed-{index}"
            uuids = frozenset(v.casefold() for v in group.all_values("uuid"))
            ips = frozenset(v.casefold() for v in group.all_values("ip"))
            addresses = frozenset(a for a in map(address_of, ips) if a is not None)
            groups.append(Group(name=name, uuids=uuids, ips=ips, addresses=addresses))
        return cls(tuple(groups))

    @property
    def open(self) -> bool:
        """No groups configured: everything is allowed."""
        return not self.groups

    def allows(self, requester: str, domain: str, name: str | None = None) -> bool:
        if self.open:
            return True
        return any(g.has_requester(requester) and g.has_target(domain, name) for g in self.groups)
