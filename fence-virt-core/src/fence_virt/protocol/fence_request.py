"""fence_req_t: the 176-byte request of the multicast, TCP and vsock transports.

Byte order: C writes port, seqno and family in its host's order; we write them
little-endian (every C host in use is), and :func:`byte_swapped` recognises a request from a
big-endian client, which ``decode(..., swapped=True)`` reads correctly.

Decoding untrusted bytes raises :class:`~fence_virt.errors.ProtocolError`. One subclass,
:class:`UnservableRequest`, is for bytes whose signature already verified
(:func:`fence_virt.protocol.verify_request`) but whose domain does not decode: an authentic
request the host must answer with a failure rather than ignore.
"""

from __future__ import annotations

import struct

from fence_virt.errors import ProtocolError
from fence_virt.protocol._fields import check_cstring, check_length, check_uint, decode_cstring
from fence_virt.protocol._record import Record, store
from fence_virt.protocol.constants import (
    ADDRESS_SIZE,
    AF_INET6_WIRE,
    AF_INET_WIRE,
    FENCE_REQ_SIZE,
    HASH_FIELD_SIZE,
    IPV4_ADDRLEN,
    IPV6_ADDRLEN,
    MAX_DOMAIN_BYTES,
    RANDOM_SIZE,
    RF_UUID,
)
from fence_virt.protocol.enums import HashType, Operation, RequestFlag

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from typing import Any, Final, Protocol

    class PackedAddress(Protocol):
        """What :meth:`FenceRequest.build` reads of an address (IPv4Address, IPv6Address)."""

        @property
        def version(self) -> int: ...
        @property
        def packed(self) -> bytes: ...


# c-suite-spec §2.2 and §2.1: packed, offsets 0,1,2,3,4,68,96,98,104,108,112. C writes the
# multi-byte fields (port, seqno, family) in its *host's* byte order: little-endian on every
# host C fence-virt runs on in practice (x86, arm64, ppc64le), so that is the wire order we
# write and expect; a request from a big-endian client has those three fields swapped.
FENCE_REQ_STRUCT: Final = struct.Struct("<BBBB64s28sH6sII64s")
#: the same layout as a big-endian host writes it
FENCE_REQ_STRUCT_SWAPPED: Final = struct.Struct(">BBBB64s28sH6sII64s")
#: byte offset of ``family`` (uint32)
_FAMILY_OFFSET: Final = 108
_FAMILIES: Final = frozenset({AF_INET_WIRE, AF_INET6_WIRE})

_ZERO_ADDRESS: Final = bytes(ADDRESS_SIZE)
_ZERO_RANDOM: Final = bytes(RANDOM_SIZE)
_ZERO_HASH: Final = bytes(HASH_FIELD_SIZE)
_NO_FLAGS: Final = RequestFlag(0)


class UnservableRequest(ProtocolError):
    """An authentic fence_req that cannot be carried out: its domain field has no NUL
    terminator or is not UTF-8 (a C agent sends a Latin-1 name byte for byte).

    Raised by :func:`fence_virt.protocol.verify_request` only after the signature (and the
    hash minimum) passed, so a listener may answer it: C looks such a name up, finds nothing
    and answers failure at once, and a client that gets no answer waits its whole timeout.
    A listener answers ``FAIL`` without asking the backend (:func:`fence_virt.listening.answer`).
    """

    def __init__(self, message: str, request: FenceRequest, domain: bytes) -> None:
        """``request``: every field as received, but ``domain`` empty -- never carry it out;
        ``domain``: the domain field's bytes up to its first NUL (all 64 without one)."""
        super().__init__(message)
        self.request = request
        self.domain = domain

    @property
    def shown_domain(self) -> str:
        """The domain for logs: undecodable bytes as ``\\xNN`` escapes (``caf\\xe9``)."""
        return self.domain.decode(errors="backslashreplace")


class FenceRequest(Record):
    """One fence_req_t. ``request`` and ``hashtype`` stay raw ints: unknown codes must decode."""

    # field order: repr, equality, __dataclass_fields__ and pickles follow it
    __slots__ = (  # noqa: RUF023
        "request",
        "hashtype",
        "addrlen",
        "flags",
        "domain",
        "address",
        "port",
        "random",
        "seqno",
        "family",
        "hash",
    )
    request: int
    hashtype: int
    #: 4 or 16 in multicast, 0 otherwise; ignored by the C host
    addrlen: int
    flags: int
    domain: str
    address: bytes
    port: int
    random: bytes
    seqno: int
    family: int
    hash: bytes

    def __init__(
        self,
        *,
        request: int,
        hashtype: int,
        addrlen: int = 0,
        flags: int = 0,
        domain: str = "",
        address: bytes = _ZERO_ADDRESS,
        port: int = 0,
        random: bytes = _ZERO_RANDOM,
        seqno: int = 0,
        family: int = 0,
        hash: bytes = _ZERO_HASH,
    ) -> None:
        store(self, "request", request)
        store(self, "hashtype", hashtype)
        store(self, "addrlen", addrlen)
        store(self, "flags", flags)
        store(self, "domain", domain)
        store(self, "address", address)
        store(self, "port", port)
        store(self, "random", random)
        store(self, "seqno", seqno)
        store(self, "family", family)
        store(self, "hash", hash)
        self._validate()

    def _validate(self) -> None:
        for name in ("request", "hashtype", "addrlen", "flags"):
            check_uint(getattr(self, name), 8, name)
        check_cstring(self.domain, MAX_DOMAIN_BYTES, "domain")
        check_length(self.address, ADDRESS_SIZE, "address")
        check_uint(self.port, 16, "port")
        check_length(self.random, RANDOM_SIZE, "random")
        check_uint(self.seqno, 32, "seqno")
        check_uint(self.family, 32, "family")
        check_length(self.hash, HASH_FIELD_SIZE, "hash")

    @classmethod
    def build(
        cls,
        operation: Operation | int,
        domain: str,
        *,
        hashtype: HashType,
        seqno: int,
        flags: RequestFlag = _NO_FLAGS,
        address: PackedAddress | None = None,
        port: int = 0,
    ) -> FenceRequest:
        """An unsigned request as the C client fills it; ``address`` only for multicast.

        ``address`` is an IPv4Address or IPv6Address, or anything with the same ``version``
        and ``packed`` (the agents avoid importing :mod:`ipaddress`).
        """
        if address is None:
            addrlen, family = 0, 0
        elif address.version == 4:
            addrlen, family = IPV4_ADDRLEN, AF_INET_WIRE
        else:
            addrlen, family = IPV6_ADDRLEN, AF_INET6_WIRE
        packed = b"" if address is None else address.packed
        return cls(
            request=int(operation),
            hashtype=int(hashtype),
            addrlen=addrlen,
            flags=int(flags),
            domain=domain,
            address=packed.ljust(ADDRESS_SIZE, b"\0"),
            port=port,
            seqno=seqno,
            family=family,
        )

    @property
    def operation(self) -> Operation | None:
        """The operation, or None for a code the protocol does not define."""
        try:
            return Operation(self.request)
        except ValueError:
            return None

    @property
    def hash_type(self) -> HashType | None:
        """The signature's hash type, or None for an undefined code."""
        try:
            return HashType(self.hashtype)
        except ValueError:
            return None

    @property
    def by_uuid(self) -> bool:
        """The client set RF_UUID: ``domain`` is a UUID."""
        return bool(self.flags & RF_UUID)

    def connect_back(self) -> tuple[str, int]:
        """IP text and TCP port a multicast host connects back to (c-suite-spec §2.2).

        The text is what C's ``inet_ntop`` prints, also for an IPv4-mapped IPv6 address:
        ``::ffff:127.0.0.1``, where Python before 3.13 writes ``::ffff:7f00:1``.
        """
        from ipaddress import IPv4Address, IPv6Address  # noqa: PLC0415 - only hosts need it

        if self.family == AF_INET_WIRE:
            return str(IPv4Address(self.address[:IPV4_ADDRLEN])), self.port
        if self.family != AF_INET6_WIRE:
            raise ProtocolError(f"unknown address family {self.family} in request")
        ip = IPv6Address(self.address[:IPV6_ADDRLEN])
        mapped = ip.ipv4_mapped
        return (str(ip) if mapped is None else f"::ffff:{mapped}"), self.port

    def unsigned(self) -> FenceRequest:
        """This request with the hash field zeroed, as it is hashed (c-suite-spec §2.4)."""
        return self.replace(hash=_ZERO_HASH)

    def encode(self) -> bytes:
        """The 176 wire bytes; the domain field is zero-filled after the name."""
        return FENCE_REQ_STRUCT.pack(
            self.request,
            self.hashtype,
            self.addrlen,
            self.flags,
            self.domain.encode(),
            self.address,
            self.port,
            self.random,
            self.seqno,
            self.family,
            self.hash,
        )

    @classmethod
    def decode(cls, data: bytes, *, swapped: bool = False) -> FenceRequest:
        """Parse exactly 176 bytes; bytes after the domain's NUL are accepted and dropped.

        ``swapped``: read port, seqno and family big-endian (a request from a big-endian
        client, see :func:`byte_swapped`); the record then holds their true values.

        :raises fence_virt.errors.ProtocolError: another length; a domain field without a
            NUL, or not UTF-8.
        """
        fields = _unpack(data, swapped)
        return cls._from_fields(fields, decode_cstring(fields[4], "domain"))

    @classmethod
    def decode_without_domain(
        cls, data: bytes, *, swapped: bool = False
    ) -> tuple[FenceRequest, bytes]:
        """The request with an empty domain, and the domain field's bytes up to the first
        NUL (all 64 without one): for a request whose domain does not decode.

        :raises fence_virt.errors.ProtocolError: not 176 bytes.
        """
        fields = _unpack(data, swapped)
        raw = fields[4]
        end = raw.find(0)
        return cls._from_fields(fields, ""), raw if end < 0 else raw[:end]

    @classmethod
    def _from_fields(cls, fields: tuple[Any, ...], domain: str) -> FenceRequest:
        request, hashtype, addrlen, flags, _, address, port, rnd, seqno, family, digest = fields
        return cls(
            request=request,
            hashtype=hashtype,
            addrlen=addrlen,
            flags=flags,
            domain=domain,
            address=address,
            port=port,
            random=rnd,
            seqno=seqno,
            family=family,
            hash=digest,
        )


def _unpack(data: bytes, swapped: bool = False) -> tuple[Any, ...]:
    if len(data) != FENCE_REQ_SIZE:
        raise ProtocolError(f"fence request must be {FENCE_REQ_SIZE} bytes, got {len(data)}")
    return (FENCE_REQ_STRUCT_SWAPPED if swapped else FENCE_REQ_STRUCT).unpack(data)


def byte_swapped(data: bytes) -> bool:
    """Whether 176 request bytes come from a big-endian client: ``family`` names an address
    family only when read big-endian (2 or 10 read one way is 33554432 or 167772160 the
    other, so only one order makes sense). Port and seqno are then in the same order. A
    request without an address (tcp, vsock: family 0) reads the same both ways: False.

    :raises fence_virt.errors.ProtocolError: not 176 bytes.
    """
    if len(data) != FENCE_REQ_SIZE:
        raise ProtocolError(f"fence request must be {FENCE_REQ_SIZE} bytes, got {len(data)}")
    field = data[_FAMILY_OFFSET : _FAMILY_OFFSET + 4]
    little, big = int.from_bytes(field, "little"), int.from_bytes(field, "big")
    return little not in _FAMILIES and big in _FAMILIES
