"""Files that hold secrets (key files, the daemon's config): the one permission check.

C forces mode 0600 on ``fence_virt.conf`` and on key files it opens (fence-agents 6bef902b),
warning when it changes one; so do we. Unlike C, only a *regular* file is accepted: a
directory named as a key file is refused before anything is changed, and a FIFO is refused
instead of hanging start-up on ``open``. The file is opened once (non-blocking, so a FIFO
cannot block) and checked and changed through that descriptor, so a file swapped in between
the check and the read is never used.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from fence_virt.errors import UserError

__all__ = ["SECRET_FILE_MODE", "read_secret_file", "secret_file_problem", "tighten_permissions"]

log = logging.getLogger("fence_virt.files")

#: owner read/write only
SECRET_FILE_MODE = 0o600

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _open_regular(path: Path, what: str) -> int:
    """A descriptor of ``path`` if it is a regular file; :class:`UserError` otherwise."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise UserError(f"{what} {path}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{what} {path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _tighten(fd: int, path: Path, what: str) -> None:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode == SECRET_FILE_MODE:
        return
    log.warning("insecure permissions on %s %s: changing from %04o to 0600", what, path, mode)
    try:
        os.fchmod(fd, SECRET_FILE_MODE)
    except OSError as exc:
        raise UserError(f"cannot chmod 0600 {what} {path}: {exc.strerror}") from exc


def tighten_permissions(path: Path, *, what: str) -> None:
    """Make sure ``path`` is a regular file with mode 0600, changing the mode with a warning.

    :param path: the file.
    :param what: how messages name it, e.g. ``"config file"``.
    :raises fence_virt.errors.UserError: missing, not a regular file, or chmod refused.
    """
    fd = _open_regular(path, what)
    try:
        _tighten(fd, path, what)
    finally:
        os.close(fd)


def read_secret_file(path: Path, *, what: str, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of a secret file, after :func:`tighten_permissions`' checks.

    :returns: the bytes exactly as stored (a key file's trailing newline is part of the key).
    :raises fence_virt.errors.UserError: missing, unreadable, not a regular file, or chmod
        refused; the message names ``what`` and the path.
    """
    fd = _open_regular(path, what)
    try:
        _tighten(fd, path, what)
        chunks: list[bytes] = []
        size = 0
        while size < max_bytes and (chunk := os.read(fd, max_bytes - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(f"{what} {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def secret_file_problem(path: Path, *, what: str) -> str | None:
    """Why ``path`` cannot be used as a secret file, or ``None``; reads and changes nothing.

    For availability checks (``--list-plugins``), which must have no side effects.
    """
    try:
        os.close(_open_regular(path, what))
    except UserError as exc:
        return str(exc)
    return None
