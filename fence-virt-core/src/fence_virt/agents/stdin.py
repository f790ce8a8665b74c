"""``name=value`` lines on stdin, read exactly like the C agent (c-suite-spec §4.3).

C reads with ``fgets`` into a 256-byte buffer (a longer line arrives as several lines),
skips lines starting with ``#``, strips leading blanks, then cuts the line at the first
blank, CR or LF: values cannot contain spaces, and ``key = value`` reads as the bare name
``key``. No ``=`` means no value (a flag for ``debug``/``use_uuid``, ignored otherwise).
"""

from __future__ import annotations

import os

from fence_virt.agents.console import warn

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Iterator

#: fgets(in, 256, stdin) returns at most 255 bytes per call
_FGETS_MAX = 255
_BLANKS = b" \t"
_ENDS = (b" ", b"\t", b"\r", b"\n")


def fgets_lines(data: bytes) -> Iterator[bytes]:
    """Split ``data`` the way repeated ``fgets(buf, 256)`` calls do."""
    start = 0
    while start < len(data):
        newline = data.find(b"\n", start, start + _FGETS_MAX)
        end = start + _FGETS_MAX if newline < 0 else newline + 1
        yield data[start:end]
        start = end


def parse_line(chunk: bytes) -> tuple[str, str | None] | None:
    """``(name, value)`` of one fgets chunk, or None for a comment or blank line."""
    line = chunk.split(b"\0", 1)[0]
    if line.startswith(b"#"):
        return None
    stripped = line.lstrip(_BLANKS)
    if stripped[:1] in (b"\n", b"\r"):
        return None
    for end in _ENDS:
        stripped = stripped.split(end, 1)[0]
    name, equals, value = stripped.partition(b"=")
    return os.fsdecode(name), os.fsdecode(value) if equals else None


def read_pairs(data: bytes) -> Iterator[tuple[str, str | None]]:
    """Every ``(name, value)`` in ``data``, in order."""
    for chunk in fgets_lines(data):
        pair = parse_line(chunk)
        if pair is not None:
            yield pair


def unknown(name: str) -> None:
    """The C agent's warning for a name it does not take; parsing continues."""
    warn(f"Parse error: Ignoring unknown option '{name}'")
