"""Codec factories: keys, signed ``fence_req`` requests and datagrams, serial requests.

Everything is built with the product's own codec (:mod:`fence_virt.protocol`), so a test
client speaks exactly what ``fence_xvm`` speaks. Example::

    key = new_key()
    data = fence_datagram(Operation.OFF, "vm1", key=key)       # what fence_xvm multicasts
    wrong = fence_datagram(Operation.OFF, "vm1", key=other_key(key))
    bad = malformed_fence_datagrams(key)                        # must all be dropped
"""

from __future__ import annotations

import os
from ipaddress import ip_address
from pathlib import Path

from fence_virt.protocol import (
    DEFAULT_PORT,
    FENCE_REQ_SIZE,
    FenceRequest,
    HashType,
    Operation,
    RequestFlag,
    SerialRequest,
    sign_request,
)

__all__ = [
    "DEFAULT_SEQNO",
    "KEY_SIZE",
    "fence_datagram",
    "fence_request",
    "malformed_fence_datagrams",
    "new_key",
    "other_key",
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
