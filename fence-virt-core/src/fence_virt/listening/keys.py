"""A listener's shared key file: must exist before the daemon starts; mode tightened like C.

C forces mode 0600 on key files (fence-agents 6bef902b) and, when it cannot read one, quietly
runs without authentication (c-suite-spec §9.2 #3); here an unusable key file stops the
daemon. The file checks themselves are :mod:`fence_virt.files`'.
"""

from __future__ import annotations

from pathlib import Path

from fence_virt.errors import UserError
from fence_virt.files import read_secret_file, secret_file_problem
from fence_virt.protocol import MAX_KEY_LEN

__all__ = ["key_problem", "load_key"]


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
