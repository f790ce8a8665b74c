"""C's ``strtol(s, &end, 0)`` and ``atoi(s)`` as the C agent uses them (c-suite-spec §4.2)."""

from __future__ import annotations

_SPACE = " \t\n\v\f\r"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_HEX = frozenset(_DIGITS[:16])
# glibc's long is 64-bit on x86_64; strtol clamps to it, atoi then truncates to int
_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)


def strtol(text: str, base: int = 0) -> tuple[int, bool]:
    """The value strtol returns and whether it consumed all of ``text`` (``*end == '\\0'``).

    No digits at all gives ``(0, text == "")``: C's ``end`` then points at the start.
    """
    i = len(text) - len(text.lstrip(_SPACE))
    negative = text[i : i + 1] == "-"
    if text[i : i + 1] in ("-", "+"):
        i += 1
    base, i = _radix(text, i, base)
    start = i
    value = 0
    while i < len(text) and (digit := _DIGITS.find(text[i].lower())) != -1 and digit < base:
        value = value * base + digit
        i += 1
    if i == start:
        return 0, text == ""
    value = -value if negative else value
    return max(_LONG_MIN, min(_LONG_MAX, value)), i == len(text)


def _radix(text: str, i: int, base: int) -> tuple[int, int]:
    """Base 0 picks 16 for ``0x`` followed by a hex digit, 8 for a leading 0, else 10."""
    if base != 0:
        return base, i
    if text[i : i + 2].lower() == "0x" and text[i + 2 : i + 3].lower() in _HEX:
        return 16, i + 2
    if text[i : i + 1] == "0":
        return 8, i
    return 10, i


def atoi(text: str) -> int:
    """glibc atoi: ``(int) strtol(text, NULL, 10)``, wrapping like the cast."""
    value, _ = strtol(text, 10)
    return (value - INT_MIN) % 2**32 + INT_MIN


def c_int(text: str) -> int | None:
    """A whole-string base-0 integer as the agent's ``int ret = strtol(...)`` checks it.

    Returns None when characters are left over or the value does not fit an int; C would
    silently truncate such a value (a timeout of 2**32 + 30 became 30), we refuse it.
    """
    value, complete = strtol(text)
    if not complete or not INT_MIN <= value <= INT_MAX:
        return None
    return value
