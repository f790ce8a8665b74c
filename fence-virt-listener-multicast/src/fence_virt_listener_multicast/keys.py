"""The shared key: must exist before the daemon starts; permissions tightened like C."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from fence_virt.errors import UserError
from fence_virt.protocol import read_key_file

__all__ = ["key_problem", "load_key"]

log = logging.getLogger("fence_virt.listener.multicast")


def load_key(path: Path, *, required: bool) -> bytes:
    """Read the key file, chmod it 0600 first if needed (C, fence-agents 6bef902b).

    ``required``: the configured hash or auth uses the key, so an empty file is an error.
    Raises UserError naming the file when it is missing, unreadable or (when required) empty.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise UserError(f"key file {path}: {exc.strerror} (listeners/multicast key_file)") from exc
    if mode != 0o600:
        log.warning("insecure permissions on key file %s: changing from %04o to 0600", path, mode)
        try:
            path.chmod(0o600)
        except OSError as exc:
            raise UserError(f"cannot chmod 0600 key file {path}: {exc.strerror}") from exc
    key = read_key_file(path)
    if required and not key:
        raise UserError(f"key file {path} is empty: every request would be refused")
    return key


def key_problem(path: Path) -> str | None:
    """Why the key file cannot be used, or None; reads nothing but the file, changes nothing."""
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        return f"key file {path}: {exc.strerror}"
    return None
