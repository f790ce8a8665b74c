"""The ``listeners { multicast { ... } }`` block: schema, defaults and validation.

Keys and defaults are C's (c-suite-spec §5.4); three keys are ours (``max_requests``,
``connect_timeout``, ``io_timeout``). Differences: an unknown ``interface`` is an error (C
silently listens on any), ``family`` may be left out when ``address`` says it, and the address
must be a multicast group of that family.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from fence_virt.config import ConfigNode, load_section
from fence_virt.errors import ConfigError
from fence_virt.protocol import (
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
    HashType,
)

__all__ = ["WHERE", "Family", "MulticastSection", "MulticastSettings", "resolve_settings"]

#: where the section lives, for messages
WHERE = "listeners/multicast"
#: C: a connect-back gets 5 s (mcast.c), each handshake step 10 s
CONNECT_TIMEOUT = 5.0
IO_TIMEOUT = 10.0
#: requests served at once; more are dropped (the client retransmits every 2 s)
MAX_REQUESTS = 128


class Family(enum.Enum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @classmethod
    def parse(cls, text: str) -> Family:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError("expected ipv4 or ipv6") from None


@dataclass(frozen=True)
class MulticastSection:
    """The block as written; :func:`resolve_settings` checks it and fills derived values."""

    key_file: Path = Path(DEFAULT_KEY_FILE)
    #: minimum hash type a request must be signed with
    hash: HashType = HashType.SHA256
    #: challenge/response algorithm; never on the wire, both sides must agree
    auth: HashType = HashType.SHA256
    family: Family | None = None
    address: str | None = None
    port: int = DEFAULT_PORT
    interface: str | None = None
    max_requests: int = MAX_REQUESTS
    connect_timeout: float = CONNECT_TIMEOUT
    io_timeout: float = IO_TIMEOUT


@dataclass(frozen=True)
class MulticastSettings:
    """A validated section, ready to bind."""

    key_file: Path
    hash: HashType
    auth: HashType
    family: Family
    group: IPv4Address | IPv6Address
    port: int
    interface: str | None
    #: 0 = let the kernel choose (no interface configured)
    ifindex: int
    max_requests: int
    connect_timeout: float
    io_timeout: float

    def describe(self) -> str:
        where = f"[{self.group}]" if self.family is Family.IPV6 else str(self.group)
        return f"multicast {where}:{self.port} on {self.interface or 'any interface'}"


def resolve_settings(node: ConfigNode | None, *, source: str | None = None) -> MulticastSettings:
    """Load and check the block; ConfigError (file:line) for any bad value."""
    raw = load_section(node, MulticastSection, where=WHERE, source=source)
    where = _Where(node, source)
    family, group = _group(raw, where)
    for name in ("port", "max_requests"):
        if getattr(raw, name) < 1 or (name == "port" and raw.port > 65535):
            raise where.error(name, f"{name} {getattr(raw, name)} is out of range")
    for name in ("connect_timeout", "io_timeout"):
        if getattr(raw, name) <= 0:
            raise where.error(name, f"{name} must be a positive number of seconds")
    return MulticastSettings(
        key_file=raw.key_file,
        hash=raw.hash,
        auth=raw.auth,
        family=family,
        group=group,
        port=raw.port,
        interface=raw.interface,
        ifindex=_ifindex(raw.interface, where),
        max_requests=raw.max_requests,
        connect_timeout=raw.connect_timeout,
        io_timeout=raw.io_timeout,
    )


@dataclass(frozen=True)
class _Where:
    node: ConfigNode | None
    source: str | None

    def error(self, key: str, message: str) -> ConfigError:
        entry = self.node.entry(key) if self.node is not None else None
        line = entry.line if entry is not None else (self.node.line if self.node else None)
        path = (self.node.source if self.node is not None else None) or self.source
        return ConfigError(f"{WHERE}: {message}", path=path, line=line or None)


def _group(raw: MulticastSection, where: _Where) -> tuple[Family, IPv4Address | IPv6Address]:
    family = raw.family
    if raw.address is None:
        family = family or Family.IPV4
        default = DEFAULT_IPV4_GROUP if family is Family.IPV4 else DEFAULT_IPV6_GROUP
        return family, ip_address(default)
    try:
        group = ip_address(raw.address.strip())
    except ValueError:
        raise where.error("address", f"address {raw.address!r} is not an IP address") from None
    found = Family.IPV4 if group.version == 4 else Family.IPV6
    if family is not None and family is not found:
        raise where.error("address", f"address {group} is not an {family.value} address")
    if not group.is_multicast:
        raise where.error("address", f"address {group} is not a multicast group")
    return found, group


def _ifindex(interface: str | None, where: _Where) -> int:
    if interface is None:
        return 0
    try:
        return socket.if_nametoindex(interface)
    except (OSError, ValueError):
        raise where.error("interface", f"no network interface named {interface!r}") from None
