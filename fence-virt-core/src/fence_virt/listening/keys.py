"""A listener's shared key file: must exist before the daemon starts; mode tightened like C.

C forces mode 0600 on key files (fence-agents 6bef902b) and, when it cannot read one, quietly
runs without authentication (c-suite-spec §9.2 #3); here an unusable key file stops the
daemon. The file checks themselves are :mod:`fence_virt.files`'.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from fence_virt.errors import UserError
from fence_virt.files import read_secret_file, secret_file_problem
from fence_virt.protocol import MAX_KEY_LEN, HashType
from fence_virt.types import CheckContext, Finding

__all__ = ["key_findings", "key_fingerprint", "key_problem", "load_key", "load_listener_key"]

#: hex digits of the SHA-256 shown as a key's fingerprint (compare with ``sha256sum``)
FINGERPRINT_DIGITS = 16


def load_key(path: Path, *, required: bool) -> bytes:
    """Read the key file (the first 4096 bytes, unchanged), chmod 0600 first if needed.

    :param required: the configured hash or auth uses the key, so an empty file is an error.
    :returns: the raw bytes, trailing newline included (c-suite-spec §3.1).
    :raises fence_virt.errors.UserError: naming the file when it is missing, unreadable, not a
        regular file or (when ``required``) empty.
    """
    key = read_secret_file(path, what="key file", max_bytes=MAX_KEY_LEN)
    if required and not key:
        raise UserError(f"key file {path} is empty: every request would be refused")
    return key


def key_problem(path: Path) -> str | None:
    """Why the key file cannot be used, or None; reads nothing but the file, changes nothing.

    For ``fence_virt_listener_check`` (``--list-plugins``), which must have no side effects.
    """
    return secret_file_problem(path, what="key file")


def load_listener_key(
    path: Path, *, hash: HashType, auth: HashType, log: logging.Logger, where: str
) -> bytes:
    """:func:`load_key` for a listener configured with ``hash`` and ``auth``; warns on ``log``
    for each of the two that is ``none`` (unsigned requests from anyone, no handshake).

    :param where: the instance's block (``ConfigSection.path``), named in the warnings.
    :returns: the key bytes; the file may be empty only when both are ``none``.
    :raises fence_virt.errors.UserError: as :func:`load_key`.
    """
    key = load_key(path, required=hash is not HashType.NONE or auth is not HashType.NONE)
    if hash is HashType.NONE:
        log.warning("%s: hash = none accepts unsigned requests from anyone", where)
    if auth is HashType.NONE:
        log.warning("%s: auth = none skips the challenge/response exchange", where)
    return key


def key_fingerprint(key: bytes) -> str:
    """The first hex digits of the key's SHA-256, as ``sha256sum KEYFILE`` prints them."""
    return hashlib.sha256(key).hexdigest()[:FINGERPRINT_DIGITS]


def key_findings(path: Path, key: bytes, context: CheckContext) -> list[Finding]:
    """``fence_virtd --check`` lines for a listener's loaded key (:class:`fence_virt.Diagnosable`).

    The daemon cannot see the guests' copies; so it prints the key's fingerprint (to compare
    with ``sha256sum`` on a guest) and, when the administrator passed a guest's copy
    (``--key-of-guest``), compares the bytes: a mismatch is a problem, since every request
    signed with the other key is dropped as wrongly signed (c-suite-spec §3.1).

    :param path: the listener's key file, for messages.
    :param key: its bytes as the listener loaded them (possibly empty with hash/auth none).
    :param context: the guest's key, if given.
    """
    if not key:
        return [Finding.ok(f"key file {path} is empty (hash and auth are none)")]
    findings = [Finding.ok(f"key file {path}: {len(key)} bytes, sha256 {key_fingerprint(key)}...")]
    guest = context.guest_key
    if guest is None:
        return findings
    if guest == key:
        findings.append(Finding.ok(f"the guest's key {context.guest_key_file} is the same"))
        return findings
    differs = (
        "differs only by a trailing newline (keys are compared byte for byte)"
        if guest.rstrip(b"\n") == key.rstrip(b"\n")
        else f"differs (sha256 {key_fingerprint(guest)}...)"
    )
    findings.append(
        Finding.problem(
            f"the guest's key {context.guest_key_file} {differs}: every request it signs "
            "is dropped",
            f"copy {path} unchanged to every guest (e.g. scp), or point key_file at the "
            "guests' key",
        )
    )
    return findings
