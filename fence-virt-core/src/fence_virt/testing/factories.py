"""Codec factories: keys, signed ``fence_req`` requests and datagrams, serial requests.

Everything is built with the product's own codec (:mod:`fence_virt.protocol`), so a test
client speaks exactly what ``fence_xvm`` speaks. Example::

    key = new_key()
    data = fence_datagram(Operation.OFF, "vm1", key=key)       # what fence_xvm multicasts
    wrong = fence_datagram(Operation.OFF, "vm1", key=other_key(key))
    bad = malformed_fence_datagrams(key)                        # must all be dropped
    latin1 = raw_domain_request(Operation.OFF, b"caf\xe9", key=key)  # must be answered FAIL
"""

from __future__ import annotations

import os
from ipaddress import ip_address
from pathlib import Path

from fence_virt.protocol import (
    DEFAULT_PORT,
    DOMAIN_FIELD_SIZE,
    FENCE_REQ_SIZE,
    HASH_FIELD_SIZE,
    RANDOM_SIZE,
    FenceRequest,
    HashType,
    Operation,
    RequestFlag,
    SerialRequest,
    sign_request,
)
from fence_virt.protocol.auth import keyed_digest

__all__ = [
    "DEFAULT_SEQNO",
    "KEY_SIZE",
    "fence_datagram",
    "fence_request",
    "malformed_fence_datagrams",
    "new_key",
    "other_key",
    "raw_domain_request",
    "serial_request",
    "write_key",
]

#: the size of the key file the fence_virt documentation creates (4096 bytes of urandom)
KEY_SIZE = 4096
#: the sequence number requests get unless a test chooses one
DEFAULT_SEQNO = 4242
#: offsets in fence_req_t (c-suite-spec §2.2): the hash-type byte and the domain field
_HASHTYPE_OFFSET, _DOMAIN_OFFSET = 1, 4
#: a hash-type code the protocol does not define
_UNKNOWN_HASHTYPE = 0x7F
#: offsets of the random bytes and the hash in fence_req_t
_RANDOM_OFFSET, _HASH_OFFSET = 98, FENCE_REQ_SIZE - HASH_FIELD_SIZE


def new_key(size: int = KEY_SIZE) -> bytes:
    """``size`` random bytes (the kernel CSPRNG), as a fresh shared key."""
    return os.urandom(size)


def other_key(key: bytes) -> bytes:
    """A key of the same length that differs from ``key`` in every byte."""
    return bytes(b ^ 0xFF for b in key) if key else b"\x01"


def write_key(path: Path, key: bytes | None = None) -> Path:
    """Write ``key`` (default: :func:`new_key`) to ``path`` with mode 0600, as fence_virtd
    wants its key files; returns ``path``."""
    path.write_bytes(new_key() if key is None else key)
    path.chmod(0o600)
    return path


def fence_request(
    operation: Operation | int,
    domain: str = "",
    *,
    key: bytes,
    hashtype: HashType = HashType.SHA256,
    seqno: int = DEFAULT_SEQNO,
    by_uuid: bool = False,
    address: str | None = None,
    port: int = 0,
) -> FenceRequest:
    """A ``fence_req`` signed with ``key`` (fresh random bytes each call, as the C client).

    :param address: the connect-back IP text a multicast request carries; ``None`` for the
        requests tcp/vsock/serial clients send (no address).
    :param port: the connect-back TCP port (multicast), else 0.
    """
    request = FenceRequest.build(
        operation,
        domain,
        hashtype=hashtype,
        seqno=seqno,
        flags=RequestFlag.UUID if by_uuid else RequestFlag(0),
        address=None if address is None else ip_address(address),
        port=port,
    )
    return sign_request(request, key)


def fence_datagram(
    operation: Operation | int,
    domain: str = "",
    *,
    key: bytes,
    hashtype: HashType = HashType.SHA256,
    seqno: int = DEFAULT_SEQNO,
    by_uuid: bool = False,
    address: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> bytes:
    """The 176 bytes ``fence_xvm`` multicasts: a signed request asking the host to connect
    back to ``address``:``port``."""
    return fence_request(
        operation,
        domain,
        key=key,
        hashtype=hashtype,
        seqno=seqno,
        by_uuid=by_uuid,
        address=address,
        port=port,
    ).encode()


def malformed_fence_datagrams(
    key: bytes, *, address: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> tuple[bytes, ...]:
    """Datagrams a listener must drop without acting: empty, cut short, one byte too long,
    random bytes, an undefined hash type, and a domain altered after signing."""
    valid = fence_datagram(Operation.OFF, "vm1", key=key, address=address, port=port)
    unknown_hash = bytearray(valid)
    unknown_hash[_HASHTYPE_OFFSET] = _UNKNOWN_HASHTYPE
    tampered = bytearray(valid)
    tampered[_DOMAIN_OFFSET] ^= 0x01  # "vm1" -> "wm1": the signature no longer matches
    return (
        b"",
        valid[:100],
        valid + b"\0",
        os.urandom(FENCE_REQ_SIZE),
        bytes(unknown_hash),
        bytes(tampered),
    )


def raw_domain_request(
    operation: Operation | int,
    domain: bytes,
    *,
    key: bytes,
    hashtype: HashType = HashType.SHA256,
    seqno: int = DEFAULT_SEQNO,
    address: str | None = None,
    port: int = 0,
) -> bytes:
    """176 bytes signed with ``key`` whose domain field holds ``domain`` as given, padded
    with zeros: a name no UTF-8 client could encode, as a C agent sends it (``fence_xvm -H
    $'caf\\xe9'`` sends the byte 0xE9), or 64 non-zero bytes (no NUL). The signature is
    valid: a host must answer such a request ``FAIL`` (C does), never ignore it.

    :param address: the connect-back IP text (multicast), ``None`` for tcp/vsock.
    :raises ValueError: ``domain`` longer than the 64-byte field.
    """
    if len(domain) > DOMAIN_FIELD_SIZE:
        raise ValueError(f"domain must fit {DOMAIN_FIELD_SIZE} bytes, got {len(domain)}")
    unsigned = FenceRequest.build(
        operation,
        "",
        hashtype=hashtype,
        seqno=seqno,
        address=None if address is None else ip_address(address),
        port=port,
    ).encode()
    data = bytearray(unsigned)
    data[_DOMAIN_OFFSET : _DOMAIN_OFFSET + DOMAIN_FIELD_SIZE] = domain.ljust(
        DOMAIN_FIELD_SIZE, b"\0"
    )
    if hashtype is not HashType.NONE:
        data[_RANDOM_OFFSET : _RANDOM_OFFSET + RANDOM_SIZE] = os.urandom(RANDOM_SIZE)
        data[_HASH_OFFSET:] = keyed_digest(hashtype, key, bytes(data))
    return bytes(data)


def serial_request(
    operation: Operation | int,
    domain: str = "",
    *,
    seqno: int = DEFAULT_SEQNO,
    by_uuid: bool = False,
) -> bytes:
    """The 74 bytes a serial/vmchannel guest writes (``serial_req_t``, c-suite-spec §2.7)."""
    flags = int(RequestFlag.UUID) if by_uuid else 0
    return SerialRequest(request=int(operation), domain=domain, seqno=seqno, flags=flags).encode()
