"""Key files: the raw bytes are the key (c-suite-spec §3.1)."""

from __future__ import annotations

import os

from fence_virt.errors import UserError
from fence_virt.protocol.constants import MAX_KEY_LEN


class KeyFileError(UserError):
    """A key file is missing or unreadable."""

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """Return the first 4096 bytes of ``path`` unchanged: no trimming, the newline is key.

    An empty file gives an empty key (every signed request then fails to verify).
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            return stream.read(MAX_KEY_LEN)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise KeyFileError(f"cannot read key file {name!r}: {reason}", path=name) from exc
