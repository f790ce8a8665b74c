"""Protocol v2: an authenticated, replay-resistant mode for our agents and our daemon only.

C peers never see it: a v2 request is a 176-byte fence_req (c-suite-spec §2.2) whose hash
type byte is :data:`V2_HASHTYPE`, a value C never sends (a C daemon drops it as an unknown
hash type, §2.4). The construction and its threat model: ``docs/protocol-v2.md``. In short,
with K the raw key file bytes and HMAC = HMAC-SHA256 (:mod:`hmac`, :mod:`hashlib`):

* the request's 64-byte hash field holds ``tag (32) ‖ timestamp (u64 LE, ms since the
  epoch) ‖ nonce (16) ‖ 8 zero bytes``; ``tag = HMAC(K, "fence-virt v2 request" ‖ every
  other byte of the request)``; the tag is the request digest D the rest is bound to;
* on the stream: client → host ``Nc`` (32 random bytes); host → client ``Nh ‖ HMAC(K,
  "fence-virt v2 host proof" ‖ D ‖ Nc ‖ Nh)``; client → host ``HMAC(K, "fence-virt v2
  client proof" ‖ D ‖ Nc ‖ Nh)``; host → client ``len (u32 LE) ‖ payload ‖ HMAC(K,
  "fence-virt v2 result" ‖ D ‖ Nc ‖ Nh ‖ len ‖ payload)``, payload being exactly what C
  mode would send (one result byte, or the host-list stream, §2.5, §2.6).

Every label is followed by fixed-size fields only (the result's length comes before it), so
no two messages of different roles or kinds can have the same MAC input.

Sans-IO like the rest of :mod:`fence_virt.protocol`: callers own the sockets. Imports
:mod:`hmac` (and OpenSSL's hashlib): only a v2 run of an agent loads this module.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import struct
import time

from fence_virt.errors import AuthenticationError, LocalError, ProtocolError
from fence_virt.protocol.constants import FENCE_REQ_SIZE, HASH_OFFSET, RANDOM_SIZE
from fence_virt.protocol.fence_request import FenceRequest, UnservableRequest

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

__all__ = [
    "DEFAULT_V2_WINDOW",
    "MAX_RESULT_SIZE",
    "NONCE_SIZE",
    "PROOF_SIZE",
    "RESULT_HEADER_SIZE",
    "V2_HASHTYPE",
    "ProtocolMode",
    "V2Client",
    "V2Host",
    "digest_of",
    "is_v2",
    "request_digest",
    "request_time",
    "result_length",
    "sign_v2",
    "verify_v2",
]

#: the hash type byte of a v2 request; C defines 0-3 and drops anything else (§2.4)
V2_HASHTYPE: Final = 0x20
#: seconds a v2 request's timestamp may differ from the host's clock, either way
DEFAULT_V2_WINDOW: Final = 30.0
#: HMAC-SHA256 output: request tag, proofs, result MAC
PROOF_SIZE: Final = 32
#: Nc and Nh, the connection's two fresh random values
NONCE_SIZE: Final = 32
#: the result frame's length prefix (u32 LE)
RESULT_HEADER_SIZE: Final = 4
#: a result payload larger than this is refused (a host list of ~129,000 VMs)
MAX_RESULT_SIZE: Final = 1 << 24

_REQUEST_NONCE_SIZE: Final = 16
_RESERVED_SIZE: Final = 8
# offsets inside the 176 bytes: tag, timestamp, nonce, reserved (c-suite-spec §2.2 hash field)
_TAG_END: Final = HASH_OFFSET + PROOF_SIZE
_TIME_END: Final = _TAG_END + 8
_NONCE_END: Final = _TIME_END + _REQUEST_NONCE_SIZE
_TIME: Final = struct.Struct("<Q")
_LENGTH: Final = struct.Struct("<I")

_REQUEST: Final = b"fence-virt v2 request\0"
_HOST_PROOF: Final = b"fence-virt v2 host proof\0"
_CLIENT_PROOF: Final = b"fence-virt v2 client proof\0"
_RESULT: Final = b"fence-virt v2 result\0"


class ProtocolMode(enum.Enum):
    """A listener's ``protocol`` key: which requests it serves (read by member name).

    ``C``: C mode only (the default; a v2 request is an unknown hash type, as for C);
    ``BOTH``: v2 requests in v2, C requests in C mode (C agents keep working);
    ``V2``: v2 only; a C request is refused and logged.
    """

    C = "c"
    BOTH = "both"
    V2 = "v2"

    @property
    def accepts_v2(self) -> bool:
        return self is not ProtocolMode.C

    @property
    def accepts_c(self) -> bool:
        return self is not ProtocolMode.V2


def _mac(key: bytes, label: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, label, hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def is_v2(data: bytes) -> bool:
    """Whether 176 received bytes claim to be a v2 request (nothing is verified)."""
    return len(data) == FENCE_REQ_SIZE and data[1] == V2_HASHTYPE


def _request_tag(key: bytes, data: bytes) -> bytes:
    return _mac(key, _REQUEST, data[:HASH_OFFSET], data[_TAG_END:])


def sign_v2(
    request: FenceRequest,
    key: bytes,
    *,
    now: float | None = None,
    nonce: bytes | None = None,
) -> FenceRequest:
    """``request`` as a v2 request: hash type, random, timestamp, nonce and tag filled.

    :param now: seconds since the epoch (default: the clock); ``nonce``: 16 bytes (tests).
    :raises fence_virt.errors.LocalError: an empty key (nothing would be authentic).
    """
    if not key:
        raise LocalError("protocol v2 needs a key")
    stamp = int((time.time() if now is None else now) * 1000)
    fresh = os.urandom(_REQUEST_NONCE_SIZE) if nonce is None else nonce
    if len(fresh) != _REQUEST_NONCE_SIZE:
        raise LocalError(f"request nonce must be {_REQUEST_NONCE_SIZE} bytes")
    trailer = _TIME.pack(stamp) + fresh + bytes(_RESERVED_SIZE)
    unsigned = request.replace(
        hashtype=V2_HASHTYPE,
        random=os.urandom(RANDOM_SIZE),
        hash=bytes(PROOF_SIZE) + trailer,
    )
    return unsigned.replace(hash=_request_tag(key, unsigned.encode()) + trailer)


def verify_v2(
    data: bytes, key: bytes, *, window: float = DEFAULT_V2_WINDOW, now: float | None = None
) -> FenceRequest:
    """Authenticate a v2 request exactly as received, check its age, then decode it.

    :param window: seconds the request's timestamp may be off the host's clock either way.
    :param now: seconds since the epoch (default: the clock).
    :raises fence_virt.errors.ProtocolError: a wrong length.
    :raises fence_virt.errors.AuthenticationError: not v2, no key, a wrong tag, reserved
        bytes set, or a timestamp outside the window (a replay, or clocks apart).
    :raises fence_virt.protocol.UnservableRequest: authentic and fresh, but the domain does
        not decode: answer failure.
    """
    if len(data) != FENCE_REQ_SIZE:
        raise ProtocolError(f"fence request must be {FENCE_REQ_SIZE} bytes, got {len(data)}")
    data = bytes(data)
    if data[1] != V2_HASHTYPE:
        raise AuthenticationError(f"hash type {data[1]} is not protocol v2")
    if not key:
        raise AuthenticationError("no key material to verify the v2 request")
    if not hmac.compare_digest(_request_tag(key, data), data[HASH_OFFSET:_TAG_END]):
        raise AuthenticationError("v2 request tag mismatch (wrong key?)")
    if any(data[_NONCE_END:]):
        raise AuthenticationError("v2 request with reserved bytes set")
    age = (time.time() if now is None else now) - _stamp(data)
    if abs(age) > window:
        when = f"{age:.1f} s old" if age > 0 else f"{-age:.1f} s in the future"
        raise AuthenticationError(
            f"v2 request timestamp {when}, outside the {window:g} s window "
            "(a replay, or the clocks of guest and host differ)"
        )
    try:
        return FenceRequest.decode(data)
    except ProtocolError as exc:
        request, domain = FenceRequest.decode_without_domain(data)
        raise UnservableRequest(str(exc), request, domain) from None


def _stamp(data: bytes) -> float:
    (millis,) = _TIME.unpack_from(data, _TAG_END)
    return float(millis) / 1000


def request_digest(request: FenceRequest) -> bytes:
    """D, the 32-byte tag of a v2 request: the proofs and the result are bound to it."""
    return request.hash[:PROOF_SIZE]


def digest_of(data: bytes) -> bytes:
    """D of a v2 request as sent (176 bytes): what :func:`request_digest` gives."""
    return bytes(data[HASH_OFFSET:_TAG_END])


def request_time(request: FenceRequest) -> float:
    """A v2 request's timestamp, seconds since the epoch."""
    return _stamp(request.encode())


def result_length(header: bytes) -> int:
    """The payload length a result frame's 4-byte header announces.

    :raises fence_virt.errors.ProtocolError: a short header or more than
        :data:`MAX_RESULT_SIZE` bytes.
    """
    if len(header) != RESULT_HEADER_SIZE:
        raise ProtocolError(f"result header must be {RESULT_HEADER_SIZE} bytes")
    (length,) = _LENGTH.unpack(header)
    if not 0 < length <= MAX_RESULT_SIZE:
        raise ProtocolError(f"result of {length} bytes announced")
    return int(length)


def _check_size(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise ProtocolError(f"{what} must be {size} bytes, got {len(data)}")


class V2Client:
    """The agent's side of one connection: hello, check the host, open its result.

    A multicast agent signs every datagram afresh, so the host that connects back proves
    one of several requests of this run: the client accepts a proof bound to any of them,
    and the result is then bound to that one.
    """

    def __init__(self, key: bytes, digests: Sequence[bytes], *, nonce: bytes | None = None) -> None:
        """``digests``: :func:`request_digest` of each request sent in this run (newest
        last); ``nonce``: Nc (tests)."""
        if not digests:
            raise LocalError("V2Client needs the digest of a request sent")
        self._key = key
        self._digests = tuple(digests)
        self._nc = os.urandom(NONCE_SIZE) if nonce is None else nonce
        self._nh: bytes | None = None
        self._digest: bytes | None = None

    def hello(self) -> bytes:
        """Nc, the first bytes to write."""
        return self._nc

    def check_host(self, data: bytes) -> bytes:
        """Verify the host's ``Nh ‖ proof`` (64 bytes); our proof to write back.

        :raises fence_virt.errors.AuthenticationError: the host does not hold the key, or
            proves another request or connection.
        """
        _check_size(data, NONCE_SIZE + PROOF_SIZE, "v2 host proof")
        nh, proof = data[:NONCE_SIZE], data[NONCE_SIZE:]
        for digest in reversed(self._digests):
            expected = _mac(self._key, _HOST_PROOF, digest, self._nc, nh)
            if hmac.compare_digest(expected, proof):
                self._nh, self._digest = nh, digest
                return _mac(self._key, _CLIENT_PROOF, digest, self._nc, nh)
        raise AuthenticationError("v2 host proof mismatch (a host without the key?)")

    def open_result(self, header: bytes, payload: bytes, tag: bytes) -> bytes:
        """The authentic payload of the result frame.

        :raises fence_virt.errors.AuthenticationError: the result was not sealed by the host
            that proved itself on this connection for this request (forged or altered).
        """
        if self._nh is None or self._digest is None:
            raise LocalError("open_result before check_host")
        expected = _mac(self._key, _RESULT, self._digest, self._nc, self._nh, header, payload)
        if not hmac.compare_digest(expected, tag):
            raise AuthenticationError("v2 result MAC mismatch (forged or altered result)")
        return payload


class V2Host:
    """The daemon's side of one connection: answer the hello, check the client, seal."""

    def __init__(self, key: bytes, digest: bytes, *, nonce: bytes | None = None) -> None:
        """``digest``: :func:`request_digest` of the verified request; ``nonce``: Nh (tests)."""
        self._key = key
        self._digest = digest
        self._nh = os.urandom(NONCE_SIZE) if nonce is None else nonce
        self._nc: bytes | None = None
        self._client_proved = False

    def answer_hello(self, nc: bytes) -> bytes:
        """``Nh ‖ host proof`` for the client's 32-byte Nc."""
        _check_size(nc, NONCE_SIZE, "v2 client hello")
        self._nc = nc
        return self._nh + _mac(self._key, _HOST_PROOF, self._digest, nc, self._nh)

    def check_client(self, proof: bytes) -> None:
        """:raises fence_virt.errors.AuthenticationError: the client's proof is wrong."""
        if self._nc is None:
            raise LocalError("check_client before answer_hello")
        _check_size(proof, PROOF_SIZE, "v2 client proof")
        expected = _mac(self._key, _CLIENT_PROOF, self._digest, self._nc, self._nh)
        if not hmac.compare_digest(expected, proof):
            raise AuthenticationError("v2 client proof mismatch (wrong key, or a reflection)")
        self._client_proved = True

    def seal_result(self, payload: bytes) -> bytes:
        """The result frame: length, ``payload`` (what C mode would send), MAC."""
        if not self._client_proved or self._nc is None:
            raise LocalError("seal_result before the client proved itself")
        if not 0 < len(payload) <= MAX_RESULT_SIZE:
            raise LocalError(f"result payload of {len(payload)} bytes")
        header = _LENGTH.pack(len(payload))
        tag = _mac(self._key, _RESULT, self._digest, self._nc, self._nh, header, payload)
        return header + payload + tag
