"""IP addresses: this machine's, from one netlink ``RTM_GETADDR`` dump (like C's ip_lookup.c),
and the check that a text is an address literal.

Multicast requests go out once per local address of the chosen family, and each carries that
address for the host to connect back to. Left out, as in C: ``::1`` and IPv6 link-local
addresses (the host cannot connect back to them without a scope). IPv4 loopback stays in:
a daemon on the same machine answers through it.
"""

from __future__ import annotations

import os
import socket
import struct

# linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_RTM_NEWADDR = 20
_RTM_GETADDR = 22
_NLM_F_REQUEST = 0x001
_NLM_F_DUMP = 0x300
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_NLMSGHDR = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")
_RECV_SIZE = 65536


class LocalAddress:
    """One address: its text form, packed bytes and the index of its interface."""

    __slots__ = ("family", "ifindex", "packed", "text")

    def __init__(self, family: int, packed: bytes, ifindex: int) -> None:
        self.family = family
        self.packed = packed
        self.ifindex = ifindex
        self.text = socket.inet_ntop(family, packed)

    @property
    def version(self) -> int:
        """4 or 6, as :class:`ipaddress.IPv4Address` has it (FenceRequest.build reads it)."""
        return 4 if self.family == socket.AF_INET else 6

    def __repr__(self) -> str:
        return f"LocalAddress({self.text!r}, ifindex={self.ifindex})"


def ip_family(text: str) -> int | None:
    """AF_INET or AF_INET6 for an address literal (``inet_pton`` v4 first, as C), else None.

    No name lookup: like C's ``fence_virt -T``, a host name is not an address.
    """
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return family
    return None


def local_addresses(family: int) -> list[LocalAddress]:
    """Addresses of ``family`` (AF_INET or AF_INET6) in kernel order; OSError on failure."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + _IFADDRMSG.size, _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
        )
        sock.sendto(header + _IFADDRMSG.pack(family, 0, 0, 0, 0), (0, 0))
        found: list[LocalAddress] = []
        while not _parse(sock.recv(_RECV_SIZE), family, found):
            pass
    finally:
        sock.close()
    return [address for address in found if _usable(address)]


def _parse(data: bytes, family: int, found: list[LocalAddress]) -> bool:
    """Add the addresses in one netlink reply to ``found``; True once the dump is done."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            raise OSError("malformed netlink message")
        body = data[offset + _NLMSGHDR.size : offset + length]
        if kind == _NLMSG_DONE:
            return True
        if kind == _NLMSG_ERROR:
            code = -struct.unpack_from("=i", body)[0]
            raise OSError(code, f"RTNETLINK answers: {os.strerror(code)}")
        if kind == _RTM_NEWADDR:
            _add_address(body, family, found)
        offset += (length + 3) & ~3
    return False


def _add_address(body: bytes, family: int, found: list[LocalAddress]) -> None:
    ifa_family, _prefix, _flags, _scope, ifindex = _IFADDRMSG.unpack_from(body)
    if ifa_family != family:
        return
    attributes: dict[int, bytes] = {}
    offset = _IFADDRMSG.size
    while offset + _RTATTR.size <= len(body):
        length, kind = _RTATTR.unpack_from(body, offset)
        if length < _RTATTR.size:
            break
        attributes[kind] = body[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3
    # IFA_LOCAL is our end of a point-to-point link; IFA_ADDRESS would be the peer there
    packed = attributes.get(_IFA_LOCAL) or attributes.get(_IFA_ADDRESS)
    if packed is not None:
        found.append(LocalAddress(family, packed, ifindex))


def _usable(address: LocalAddress) -> bool:
    if address.family != socket.AF_INET6:
        return True
    loopback = address.packed == bytes(15) + b"\x01"
    link_local = address.packed[0] == 0xFE and address.packed[1] & 0xC0 == 0x80
    return not (loopback or link_local)
