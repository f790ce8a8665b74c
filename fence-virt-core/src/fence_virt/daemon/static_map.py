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
``ip`` entries; comparisons are case-insensitive and textual (no IP normalisation, as in C).
"""

from __future__ import annotations

from dataclasses import dataclass

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.types import domain_uuid

__all__ = ["Group", "StaticMap", "is_canonical_uuid"]


def is_canonical_uuid(text: str) -> bool:
    """True for the 36-character hyphenated form C's map check treats as a UUID."""
    return domain_uuid(text) is not None


@dataclass(frozen=True)
class Group:
    name: str
    uuids: frozenset[str]
    ips: frozenset[str]

    def has_requester(self, requester: str) -> bool:
        pool = self.uuids if is_canonical_uuid(requester) else self.ips
        return requester.casefold() in pool

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
    def from_node(cls, node: ConfigNode | None) -> StaticMap:
        """The map a ``groups { group { ... } ... }`` block describes; open for ``None``."""
        if node is None:
            return cls()
        groups = []
        for index, group in enumerate(node.children_named("group"), start=1):
            name = group.get("@name") or group.value or f"unnamed-{index}"
            uuids = frozenset(v.casefold() for v in group.all_values("uuid"))
            ips = frozenset(v.casefold() for v in group.all_values("ip"))
            groups.append(Group(name=name, uuids=uuids, ips=ips))
        return cls(tuple(groups))

    @property
    def open(self) -> bool:
        """No groups configured: everything is allowed."""
        return not self.groups

    def allows(self, requester: str, domain: str, name: str | None = None) -> bool:
        if self.open:
            return True
        return any(g.has_requester(requester) and g.has_target(domain, name) for g in self.groups)
