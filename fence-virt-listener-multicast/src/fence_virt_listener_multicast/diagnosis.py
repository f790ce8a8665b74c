"""``fence_virtd --check`` for a multicast instance: key, interface or route, socket.

"Multicast does not reach the host" is one of the three most common reports. The host only
receives a group's datagrams on the interface where it joined the group: the configured
``interface``, or -- without one -- the interface of the kernel's route to the group. So:

* with ``interface``: it must be up and multicast-capable (the loopback only warns: no
  guest is on it);
* without: the kernel must have a route to the group (a host with no default route and no
  multicast route cannot join at all), and the line names the local address it picks;
* then the UDP port is bound and the group joined, and both are released again.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from typing import Final

from fence_virt import CheckContext, Finding
from fence_virt.errors import UserError
from fence_virt.listening import key_findings
from fence_virt_listener_multicast.settings import Family, MulticastSettings
from fence_virt_listener_multicast.sockets import open_group_socket

__all__ = ["diagnose"]

#: linux/sockios.h and linux/if.h
SIOCGIFFLAGS: Final = 0x8913
IFF_UP: Final = 0x1
IFF_LOOPBACK: Final = 0x8
IFF_MULTICAST: Final = 0x1000
#: struct ifreq: 16 bytes of name, then a union of up to 24 bytes (flags: a short first)
_IFREQ = struct.Struct("16sh22x")
#: the whole multicast range of each family, for the suggested route
_MULTICAST_NET = {Family.IPV4: "224.0.0.0/4", Family.IPV6: "ff00::/8"}


def diagnose(settings: MulticastSettings, key: bytes, context: CheckContext) -> list[Finding]:
    """Every finding for one instance, in the order to print them."""
    findings = key_findings(settings.key_file, key, context)
    where = _interface(settings) if settings.interface else _route(settings)
    findings.append(where)
    if not where.is_problem:  # a join with no route fails too: one line per cause
        findings.append(_socket(settings))
    return findings


def _block(settings: MulticastSettings) -> str:
    return f"listeners/{settings.name}"


def _flags(name: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = _IFREQ.pack(name.encode(), 0)
        _name, flags = _IFREQ.unpack(fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))
    return int(flags)


def _interface(settings: MulticastSettings) -> Finding:
    name = settings.interface or ""
    try:
        flags = _flags(name)
    except OSError as exc:
        return Finding.problem(
            f"cannot read interface {name}: {exc.strerror}",
            f"name an existing interface in {_block(settings)} (ip link)",
        )
    if not flags & IFF_UP:
        return Finding.problem(
            f"interface {name} is down: no multicast reaches this host on it",
            f"ip link set {name} up, or set interface to the bridge the guests are on",
        )
    if flags & IFF_LOOPBACK:
        # the kernel delivers multicast on lo without the flag; but no guest is there
        return Finding.warning(
            f"interface {name} is the loopback: only clients on this host can reach it",
            "set interface to the bridge the guests are on, e.g. virbr0",
        )
    if not flags & IFF_MULTICAST:
        return Finding.problem(
            f"interface {name} does not do multicast",
            f"ip link set {name} multicast on",
        )
    return Finding.ok(f"interface {name} is up and multicast-capable")


def _route(settings: MulticastSettings) -> Finding:
    """Ask the kernel which way it would send to the group (a UDP connect sends nothing)."""
    family = socket.AF_INET if settings.family is Family.IPV4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((str(settings.group), settings.port))
            local = sock.getsockname()[0]
        except OSError as exc:
            if exc.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
                raise
            return Finding.problem(
                f"no route to multicast group {settings.group} and no interface set: the "
                "group cannot be joined, so guests' requests never reach this host",
                f'set interface = "NAME" in {_block(settings)} (the bridge the guests are '
                f"on, e.g. virbr0), or add a route: ip route add "
                f"{_MULTICAST_NET[settings.family]} dev NAME",
            )
    return Finding.ok(
        f"no interface set: {settings.group} is joined on the interface of its route "
        f"(local address {local}); set interface if the guests are on another one"
    )


def _socket(settings: MulticastSettings) -> Finding:
    try:
        open_group_socket(settings).close()
    except UserError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            fix = (
                f"stop what holds UDP port {settings.port} (a running fence_virtd answers "
                f"this line too), or set another port in {_block(settings)}"
            )
        else:
            fix = f"check interface, address and family in {_block(settings)}"
        return Finding.problem(str(exc), fix)
    return Finding.ok(f"UDP port {settings.port} can be bound and {settings.group} joined")
