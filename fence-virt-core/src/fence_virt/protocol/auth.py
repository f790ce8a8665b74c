"""Request signatures and challenge/response digests (c-suite-spec §2.4, §3.2).

The C suite uses a keyed prefix hash, H(key ‖ message), zero-padded to 64 bytes; not HMAC.
Nothing here ever reveals the digest a peer should have sent.
"""

from __future__ import annotations

import os

# hmac.compare_digest is this function (or OpenSSL's equivalent, as constant-time), but
# importing hmac loads hashlib and OpenSSL: +3.3-6.7 ms per fence_xvm -o status, measured by
# bench/client_startup.py --interleave (the table in fence_virt.agents)
from _operator import _compare_digest as compare_digest

from fence_virt.errors import AuthenticationError, LocalError, ProtocolError
from fence_virt.protocol._digests import digest
from fence_virt.protocol.constants import (
    CHALLENGE_SIZE,
    FENCE_REQ_SIZE,
    HASH_FIELD_SIZE,
    HASH_OFFSET,
    RANDOM_SIZE,
)
from fence_virt.protocol.enums import HashType
from fence_virt.protocol.fence_request import FenceRequest, UnservableRequest

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from typing import Final

_DIGEST_NAMES: Final = {
    HashType.SHA1: "sha1",
    HashType.SHA256: "sha256",
    HashType.SHA512: "sha512",
}
_ZERO_HASH: Final = bytes(HASH_FIELD_SIZE)


def keyed_digest(hashtype: HashType, key: bytes, message: bytes) -> bytes:
    """H(key ‖ message) zero-padded to 64 bytes; LocalError for NONE or an unknown type."""
    name = _DIGEST_NAMES.get(hashtype)
    if name is None:
        raise LocalError(f"no digest for hash type {hashtype!r}")
    return digest(name, key + message).ljust(HASH_FIELD_SIZE, b"\0")


def sign_request(req: FenceRequest, key: bytes, *, nonce: bytes | None = None) -> FenceRequest:
    """Fill ``random`` and ``hash`` per ``req.hashtype`` (c-suite-spec §2.4).

    Hash type NONE zeroes both fields. ``nonce`` replaces the 6 fresh random bytes (tests only).
    """
    hashtype = req.hash_type
    if hashtype is None:
        raise LocalError(f"cannot sign with unknown hash type {req.hashtype}")
    if hashtype is HashType.NONE:
        return req.replace(random=bytes(RANDOM_SIZE), hash=_ZERO_HASH)
    unsigned = req.replace(random=_random(RANDOM_SIZE) if nonce is None else nonce, hash=_ZERO_HASH)
    return unsigned.replace(hash=keyed_digest(hashtype, key, unsigned.encode()))


def _random(size: int) -> bytes:
    # secrets.token_bytes is os.urandom (the kernel CSPRNG) but imports base64 and random
    return os.urandom(size)


def verify_request(data: bytes, key: bytes, minimum: HashType) -> FenceRequest:
    """Authenticate the 176 bytes exactly as received, then decode them.

    A stronger hash than ``minimum`` is accepted, as in C. Nothing is decoded before the
    signature verified, so what the error says is who may be answered:

    :raises fence_virt.errors.ProtocolError: a wrong length (nothing is authentic).
    :raises fence_virt.errors.AuthenticationError: the hash type is weaker than ``minimum`` or
        unknown, there is no key, or the signature differs: drop it, answer nothing.
    :raises UnservableRequest: authentic (as far as ``minimum`` demands), but the domain does
        not decode: answer failure (C does), carry nothing out.
    """
    if len(data) != FENCE_REQ_SIZE:
        raise ProtocolError(f"fence request must be {FENCE_REQ_SIZE} bytes, got {len(data)}")
    hashtype = _check_hash_type(data[1], minimum)
    if hashtype is not HashType.NONE:
        _check_signature(bytes(data), hashtype, key)
    try:
        return FenceRequest.decode(data)
    except ProtocolError as exc:
        request, domain = FenceRequest.decode_without_domain(data)
        raise UnservableRequest(str(exc), request, domain) from None


def _check_hash_type(code: int, minimum: HashType) -> HashType:
    try:
        hashtype = HashType(code)
    except ValueError:
        raise AuthenticationError(f"unknown hash type {code}") from None
    if hashtype < minimum:
        raise AuthenticationError(
            f"hash type {hashtype.label} weaker than required {minimum.label}"
        )
    return hashtype


def _check_signature(data: bytes, hashtype: HashType, key: bytes) -> None:
    if not key:
        raise AuthenticationError("no key material to verify the signature")
    expected = keyed_digest(hashtype, key, data[:HASH_OFFSET] + _ZERO_HASH)
    if not compare_digest(expected, data[HASH_OFFSET:]):
        raise AuthenticationError(f"{hashtype.label} signature mismatch (wrong key?)")


def exchange_required(auth: HashType) -> bool:
    """Whether the challenge/response exchange happens; it is absent for auth NONE."""
    return auth is not HashType.NONE


def new_challenge() -> bytes:
    """64 fresh random bytes to send as a challenge."""
    return _random(CHALLENGE_SIZE)


def challenge_response(auth: HashType, key: bytes, challenge: bytes) -> bytes:
    """The 64-byte answer H(key ‖ challenge); ProtocolError if a peer's challenge is short."""
    if len(challenge) != CHALLENGE_SIZE:
        raise ProtocolError(f"challenge must be {CHALLENGE_SIZE} bytes, got {len(challenge)}")
    return keyed_digest(auth, key, challenge)


def check_challenge_response(auth: HashType, key: bytes, challenge: bytes, response: bytes) -> bool:
    """Compare all 64 bytes of ``response`` with the expected answer, in constant time."""
    if len(challenge) != CHALLENGE_SIZE:
        raise LocalError(f"challenge must be {CHALLENGE_SIZE} bytes, got {len(challenge)}")
    return compare_digest(keyed_digest(auth, key, challenge), response)
