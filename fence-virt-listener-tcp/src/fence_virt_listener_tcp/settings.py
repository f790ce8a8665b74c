"""A tcp listener instance's block (``listeners { tcp { ... } }``): schema, defaults, checks.

Keys and defaults are C's (tcp.c; c-suite-spec §5.4, §2.8): ``key_file``, ``hash``,
``auth``, ``family``, ``address`` (default 127.0.0.1, or ::1 for ipv6: loopback only) and
``port`` (1229). Five keys are ours: ``max_connections``, ``request_timeout`` (C: 1 s),
``io_timeout`` (C: 10 s), and ``replay_window`` / ``replay_state`` for the replay memory
(:class:`fence_virt.listening.ReplaySettings`). Differences: ``auth`` is the challenge
algorithm, as for multicast (C's tcp listener stores it into the ``hash`` minimum and always
challenges with sha256, §3.3); ``family`` may be left out when ``address`` is an IP address
of either family; an address that is neither an IP address nor a name of the family is an
error at its line.
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
    IO_TIMEOUT,
    MAX_CONNECTIONS,
    REPLAY_WINDOW,
    REQUEST_TIMEOUT,
    ReplaySettings,
    default_replay_state,
)
from fence_virt.listening.v2 import v2_window_problem
from fence_virt.protocol import DEFAULT_KEY_FILE, DEFAULT_PORT, HashType
from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, ProtocolMode

__all__ = ["DEFAULT_ADDRESSES", "Family", "TcpSection", "TcpSettings", "resolve_settings"]


class Family(enum.Enum):
    """The ``family`` key (read by member name, case-insensitively)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @property
    def socket_family(self) -> socket.AddressFamily:
        return socket.AF_INET if self is Family.IPV4 else socket.AF_INET6


#: C's default bind address per family (tcp.c): loopback, so nothing is exposed by default
DEFAULT_ADDRESSES = {Family.IPV4: "127.0.0.1", Family.IPV6: "::1"}


@dataclass(frozen=True)
class TcpSection:
    """The block as written; :func:`resolve_settings` checks it and fills derived values."""

    key_file: Path = Path(DEFAULT_KEY_FILE)
    #: minimum hash type a request must be signed with
    hash: HashType = HashType.SHA256
    #: challenge/response algorithm; never on the wire, both sides must agree
    auth: HashType = HashType.SHA256
    family: Family | None = None
    #: an IP address of the family, or a name resolved to one when the daemon starts
    address: str | None = None
    port: Annotated[int, PORT] = DEFAULT_PORT
    max_connections: Annotated[int, at_least(1)] = MAX_CONNECTIONS
    request_timeout: Annotated[float, POSITIVE] = REQUEST_TIMEOUT
    io_timeout: Annotated[float, POSITIVE] = IO_TIMEOUT
    #: seconds every verified signature is refused again (below C's 10-s history: nothing)
    replay_window: Annotated[float, at_least(HISTORY_WINDOW)] = REPLAY_WINDOW
    #: the replay memory's state file; default ``default_replay_state(instance)``
    replay_state: Annotated[Path, ABSOLUTE_PATH] | None = None
    #: ``c`` (default), ``both`` or ``v2``: which requests are served (docs/protocol-v2.md)
    protocol: ProtocolMode = ProtocolMode.C
    #: seconds a v2 request's timestamp may differ from this host's clock
    v2_window: Annotated[float, POSITIVE] = DEFAULT_V2_WINDOW


@dataclass(frozen=True)
class TcpSettings:
    """A validated block, ready to bind."""

    #: the listener instance's name (its block's name), for logs
    name: str
    key_file: Path
    hash: HashType
    auth: HashType
    family: Family
    address: IPv4Address | IPv6Address
    port: int
    max_connections: int
    request_timeout: float
    io_timeout: float
    replay: ReplaySettings
    protocol: ProtocolMode = ProtocolMode.C
    v2_window: float = DEFAULT_V2_WINDOW

    def describe(self) -> str:
        where = f"[{self.address}]" if self.family is Family.IPV6 else str(self.address)
        return f"tcp {where}:{self.port}"


def resolve_settings(section: ConfigSection) -> TcpSettings:
    """Load and check the block. :raises fence_virt.errors.ConfigError: file:line and why."""
    raw = section.load(TcpSection)
    problem = v2_window_problem(raw.v2_window, raw.replay_window)
    if problem is not None:
        raise section.error("v2_window", problem)
    family, address = _address(raw, section)
    return TcpSettings(
        name=section.name,
        key_file=raw.key_file,
        hash=raw.hash,
        auth=raw.auth,
        family=family,
        address=address,
        port=raw.port,
        max_connections=raw.max_connections,
        request_timeout=raw.request_timeout,
        io_timeout=raw.io_timeout,
        replay=ReplaySettings(
            raw.replay_window, raw.replay_state or default_replay_state(section.name)
        ),
        protocol=raw.protocol,
        v2_window=raw.v2_window,
    )


def _address(raw: TcpSection, section: ConfigSection) -> tuple[Family, IPv4Address | IPv6Address]:
    if raw.address is None:
        family = raw.family or Family.IPV4
        return family, ip_address(DEFAULT_ADDRESSES[family])
    text = raw.address.strip()
    try:
        address = ip_address(text)
    except ValueError:
        family = raw.family or Family.IPV4
        return family, _resolve(text, family, section)
    found = Family.IPV4 if address.version == 4 else Family.IPV6
    if raw.family is not None and raw.family is not found:
        raise section.error("address", f"address {address} is not an {raw.family.value} address")
    return found, address


def _resolve(name: str, family: Family, section: ConfigSection) -> IPv4Address | IPv6Address:
    """The first address of ``family`` ``name`` resolves to (C: getaddrinfo with the family)."""
    try:
        found = socket.getaddrinfo(name, None, family.socket_family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        message = f"address {name!r} is neither an IP address nor an {family.value} name: {reason}"
        raise section.error("address", message) from None
    return ip_address(str(found[0][4][0]).partition("%")[0])
