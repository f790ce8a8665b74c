"""``name=value`` lines on stdin, read as fence-agents' Python library reads them.

Each line (up to its LF; a last line needs none) is read whole: lines starting with ``#``
are skipped, leading blanks (space, tab) are stripped, trailing blanks, CR and LF are
removed, and a line that is then empty is skipped. The name is what comes before the first
``=`` and the value is everything after it, blanks included: ``port=db primary`` names the
VM ``db primary``. No ``=`` means no value (a flag for ``debug``/``use_uuid``, ignored
otherwise).

Deliberately unlike C (c-suite-spec §4.3), which cut every line at its first blank, CR or
LF (so ``port=db primary`` fenced ``db``), split lines longer than 255 bytes into several
(the tail of a long line was read as a line of its own) and ended a line at a NUL byte.
Here nothing is cut, so no value -- a target above all -- ever changes silently: a value
an option cannot take (``timeout=30 s``, a name of 64 bytes or more) fails with that
option's own message, and a value with a NUL byte in it fails for every name
(:func:`refuse_nul`). ``key = value`` (blanks around ``=``) is the unknown name ``key ``,
warned about, as fence-agents does; C read it as the bare name ``key``.
"""

from __future__ import annotations

import os

from fence_virt.agents.console import warn

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Iterator

    from fence_virt.agents.options import AgentArgs

#: C's leading blanks (it strips only these before the name)
_LEADING = b" \t"
#: what ends a value: trailing blanks, CR (a CRLF file) and the LF itself
_TRAILING = b" \t\r\n"


def parse_line(line: bytes) -> tuple[str, str | None] | None:
    """``(name, value)`` of one line, or None for a comment or blank line."""
    if line.startswith(b"#"):
        return None
    stripped = line.lstrip(_LEADING).rstrip(_TRAILING)
    if not stripped:
        return None
    name, equals, value = stripped.partition(b"=")
    return os.fsdecode(name), os.fsdecode(value) if equals else None


def read_pairs(data: bytes) -> Iterator[tuple[str, str | None]]:
    """Every ``(name, value)`` in ``data``, in order."""
    for line in data.split(b"\n"):
        pair = parse_line(line)
        if pair is not None:
            yield pair


def unknown(name: str) -> None:
    """The C agent's warning for a name it does not take; parsing continues."""
    warn(f"Parse error: Ignoring unknown option '{_shown(name)}'")


def refuse_nul(args: AgentArgs, name: str, value: str) -> None:
    """A value with a NUL byte in it is an argument error (stdout, as the option checks).

    C's strings ended there (``port=db\\0x`` fenced ``db``); no option can use one.
    """
    args.error(f"Invalid value for {name}: '{_shown(value)}' (contains a NUL byte)")


def _shown(text: str) -> str:
    """``text`` with each NUL byte written ``\\0`` (a terminal would show nothing)."""
    return text.replace("\0", "\\0")
