"""A clock a test moves forward while the daemon reading it runs (Debian ``libfaketime``).

:class:`FakeClock` writes an offset (``+SECONDS``) to a file; a process started with
:meth:`FakeClock.wrapper` in front of its command line has ``libfaketime.so.1`` preloaded,
which adds that offset to every clock it reads -- ``CLOCK_REALTIME`` and ``CLOCK_MONOTONIC``
alike (libfaketime's default), so both ``time.time()`` and ``time.monotonic()`` jump. The
file is read again at every clock call (``FAKETIME_NO_CACHE=1``): a later :meth:`FakeClock.set`
reaches the running process at its next clock reading. Sleeps and timeouts are not scaled
(only an offset is set); timers asyncio had armed simply fire at its next wake-up.

Only the wrapped command is preloaded (``env`` sets the variables after ``ip netns exec``),
never this test process.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from fence_virt_testinfra.tools import unavailable

__all__ = ["FakeClock", "libfaketime", "require_libfaketime"]

#: Debian installs it under the multiarch directory
_PATTERN = "/usr/lib/*/faketime/libfaketime.so.1"


def libfaketime() -> Path | None:
    """The preloadable library of Debian's ``libfaketime``, if installed."""
    found = sorted(glob.glob(_PATTERN))
    return Path(found[0]) if found else None


def require_libfaketime() -> Path:
    """:func:`libfaketime`, or skip the calling test (fail it under scripts/test)."""
    library = libfaketime()
    if library is None:
        unavailable("libfaketime is missing: install Debian libfaketime")
    return library


class FakeClock:
    """An offset in seconds, shared by every process started under :meth:`wrapper`.

    :param path: the timestamp file (created with offset 0).
    :param library: ``libfaketime.so.1``.
    """

    def __init__(self, path: Path, library: Path) -> None:
        self.path = path
        self.library = library
        self.offset = 0
        self.set(0)

    def set(self, offset: int) -> None:
        """From now on, the wrapped processes' clocks read ``offset`` seconds ahead of the
        real ones. Written atomically: a reader never sees half a file."""
        temporary = self.path.with_name(f".{self.path.name}.new")
        temporary.write_text(f"{offset:+d}\n")
        os.replace(temporary, self.path)
        self.offset = offset

    def wrapper(self) -> list[str]:
        """The words to put in front of a command (inside the namespace) to run it on this
        clock."""
        return [
            "env",
            f"LD_PRELOAD={self.library}",
            f"FAKETIME_TIMESTAMP_FILE={self.path}",
            "FAKETIME_NO_CACHE=1",
        ]
