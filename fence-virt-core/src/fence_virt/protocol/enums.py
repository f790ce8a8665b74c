"""Operation, hash/auth and response codes of the C fence_virt protocol (c-suite-spec §2.3)."""

from __future__ import annotations

from enum import IntEnum, IntFlag

from fence_virt.protocol.constants import HOSTLIST_MARKER, RF_UUID


class Operation(IntEnum):
    """fence_cmd_t, byte 0 of a request."""

    NULL = 0
    OFF = 1
    REBOOT = 2
    ON = 3
    STATUS = 4
    #: "monitor" on the command line
    DEVSTATUS = 5
    #: "list" / "list-status"
    HOSTLIST = 6
    #: client-local, never sent
    METADATA = 7
    #: client-local, never sent
    VALIDATEALL = 8


class HashType(IntEnum):
    """fence_hash_t (request signature, byte 1) and fence_auth_type_t (challenge, never sent).

    Both sides must configure the same auth type; the enum values coincide, so one type
    serves both.
    """

    NONE = 0
    SHA1 = 1
    SHA256 = 2
    SHA512 = 3

    @classmethod
    def parse(cls, name: str) -> HashType:
        """Parse ``none``/``sha1``/``sha256``/``sha512`` (ASCII, any case) as C strcasecmp does."""
        member = _BY_LABEL.get(name.lower()) if name.isascii() else None
        if member is None:
            choices = ", ".join(_BY_LABEL)
            raise ValueError(f"unknown hash type {name!r} (expected one of: {choices})")
        return member

    @property
    def label(self) -> str:
        """The lower-case name used in configuration files and on the command line."""
        return self.name.lower()

    @property
    def digest_size(self) -> int:
        """Length of the digest before zero padding to 64 bytes; 0 for NONE."""
        return _DIGEST_SIZES[self]


_BY_LABEL = {member.label: member for member in HashType}
_DIGEST_SIZES = {HashType.NONE: 0, HashType.SHA1: 20, HashType.SHA256: 32, HashType.SHA512: 64}


class Response(IntEnum):
    """The one-byte result a host sends back (a backend's int truncated to 8 bits)."""

    SUCCESS = 0
    FAIL = 1
    #: status: the VM is off (or unknown to the libvirt backend)
    OFF = 2
    #: a static map denied the request
    PERM = 3
    #: a host-list stream follows (c-suite-spec §2.6)
    HOSTLIST = HOSTLIST_MARKER


class RequestFlag(IntFlag):
    """Bits of fence_req_t.flags; the C host ignores them."""

    UUID = RF_UUID
