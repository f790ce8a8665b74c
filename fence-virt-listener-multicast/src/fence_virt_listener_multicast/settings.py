"""A multicast listener instance's block (``listeners { multicast { ... } }``): schema,
defaults and validation.

Keys and defaults are C's (c-suite-spec §5.4); nine keys are ours (``max_requests``,
``max_requests_per_source``, ``connect_timeout``, ``io_timeout``, ``replay_window`` /
``replay_state`` for the replay memory, :class:`fence_virt.listening.ReplaySettings`,
``local_guests_only`` / ``local_guests_uri`` and ``byte_swapped``). Differences: an
unknown ``interface`` is an error (C silently listens on any), ``family`` may be left out
when ``address`` says it, and the address must be a multicast group of that family.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Annotated

from fence_virt.config import ABSOLUTE_PATH, PORT, POSITIVE, ConfigSection, at_least
from fence_virt.listening import (
    HISTORY_WINDOW,
    REPLAY_WINDOW,
    ReplaySettings,
    default_replay_state,
)
from fence_virt.listening.v2 import v2_window_problem
from fence_virt.protocol import (
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
    HashType,
)
from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, ProtocolMode

__all__ = ["ByteSwapped", "Family", "MulticastSection", "MulticastSettings", "resolve_settings"]

#: C: a connect-back gets 5 s (mcast.c), each handshake step 10 s
CONNECT_TIMEOUT = 5.0
IO_TIMEOUT = 10.0
#: requests served at once; more are dropped (the client retransmits every 2 s)
MAX_REQUESTS = 128
#: requests of one connect-back address served at once: a guest runs one fence_xvm per
#: operation, and its copies for other addresses queue behind the first; more are requests
#: to an address that does not answer (a black hole holds each for ``connect_timeout``) and
#: must not take every slot of ``max_requests`` from the other guests
MAX_REQUESTS_PER_SOURCE = 8


class ByteSwapped(enum.Enum):
    """``byte_swapped``: what to do with a request from a big-endian client."""

    SERVE = "serve"
    REFUSE = "refuse"


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
    port: Annotated[int, PORT] = DEFAULT_PORT
    interface: str | None = None
    max_requests: Annotated[int, at_least(1)] = MAX_REQUESTS
    #: requests to one connect-back address served at once; more are dropped (a guest
    #: whose address does not answer cannot take every ``max_requests`` slot)
    max_requests_per_source: Annotated[int, at_least(1)] = MAX_REQUESTS_PER_SOURCE
    connect_timeout: Annotated[float, POSITIVE] = CONNECT_TIMEOUT
    io_timeout: Annotated[float, POSITIVE] = IO_TIMEOUT
    #: seconds every received signature is refused again; below C's 10-s history it would
    #: add nothing
    replay_window: Annotated[float, at_least(HISTORY_WINDOW)] = REPLAY_WINDOW
    #: the replay memory's state file; default ``default_replay_state(instance)``
    replay_state: Annotated[Path, ABSOLUTE_PATH] | None = None
    #: ``c`` (default), ``both`` or ``v2``: which requests are served (docs/protocol-v2.md)
    protocol: ProtocolMode = ProtocolMode.C
    #: seconds a v2 request's timestamp may differ from this host's clock
    v2_window: Annotated[float, POSITIVE] = DEFAULT_V2_WINDOW
    #: a request from a big-endian client (port, seqno, family byte-swapped): ``serve`` it
    #: (read big-endian) or ``refuse`` it; either way one log line says so
    byte_swapped: ByteSwapped = ByteSwapped.SERVE
    #: serve a request only if its connect-back address belongs to a domain running here
    #: (libvirt's DHCP leases and ARP table); other hosts stay silent
    local_guests_only: bool = False
    #: libvirt URIs whose running domains count as local (repeatable)
    local_guests_uri: tuple[str, ...] = ("qemu:///system",)


@dataclass(frozen=True)
class MulticastSettings:
    """A validated section, ready to bind."""

    #: the listener instance's name (its block's name), for logs
    name: str
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
    #: requests in progress per connect-back address (the requester)
    max_requests_per_source: int
    connect_timeout: float
    io_timeout: float
    replay: ReplaySettings
    protocol: ProtocolMode = ProtocolMode.C
    v2_window: float = DEFAULT_V2_WINDOW
    #: the libvirt URIs of ``local_guests_only``; empty when it is off
    local_guests: tuple[str, ...] = ()
    #: serve requests of big-endian clients (``byte_swapped = "serve"``)
    serve_swapped: bool = True

    def describe(self) -> str:
        where = f"[{self.group}]" if self.family is Family.IPV6 else str(self.group)
        return f"multicast {where}:{self.port} on {self.interface or 'any interface'}"


def resolve_settings(section: ConfigSection) -> MulticastSettings:
    """Load and check the block; ConfigError (file:line) for any bad value."""
    raw = section.load(MulticastSection)
    family, group = _group(raw, section)
    return MulticastSettings(
        name=section.name,
        key_file=raw.key_file,
        hash=raw.hash,
        auth=raw.auth,
        family=family,
        group=group,
        port=raw.port,
        interface=raw.interface,
        ifindex=_ifindex(raw.interface, section),
        max_requests=raw.max_requests,
        max_requests_per_source=raw.max_requests_per_source,
        connect_timeout=raw.connect_timeout,
        io_timeout=raw.io_timeout,
        replay=ReplaySettings(
            raw.replay_window, raw.replay_state or default_replay_state(section.name)
        ),
        protocol=raw.protocol,
        v2_window=_v2_window(raw, section),
        local_guests=raw.local_guests_uri if raw.local_guests_only else (),
        serve_swapped=raw.byte_swapped is ByteSwapped.SERVE,
    )


def _v2_window(raw: MulticastSection, section: ConfigSection) -> float:
    """The v2 window; the replay memory must outlive every timestamp it lets in."""
    problem = v2_window_problem(raw.v2_window, raw.replay_window)
    if problem is not None:
        raise section.error("v2_window", problem)
    return raw.v2_window


def _group(
    raw: MulticastSection, section: ConfigSection
) -> tuple[Family, IPv4Address | IPv6Address]:
    family = raw.family
    if raw.address is None:
        family = family or Family.IPV4
        default = DEFAULT_IPV4_GROUP if family is Family.IPV4 else DEFAULT_IPV6_GROUP
        return family, ip_address(default)
    try:
        group = ip_address(raw.address.strip())
    except ValueError:
        raise section.error("address", f"address {raw.address!r} is not an IP address") from None
    found = Family.IPV4 if group.version == 4 else Family.IPV6
    if family is not None and family is not found:
        raise section.error("address", f"address {group} is not an {family.value} address")
    if not group.is_multicast:
        raise section.error("address", f"address {group} is not a multicast group")
    return found, group


def _ifindex(interface: str | None, section: ConfigSection) -> int:
    if interface is None:
        return 0
    try:
        return socket.if_nametoindex(interface)
    except (OSError, ValueError):
        raise section.error("interface", f"no network interface named {interface!r}") from None
