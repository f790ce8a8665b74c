"""Command-line parsing with glibc ``getopt(3)`` semantics, as the C agents use it.

Reproduced on purpose: clusters (``-dd``), attached or separate arguments (``-ofoo``,
``-o foo``; a separate argument may start with ``-``), optional arguments (``S::``: attached
only), ``--`` ends the options, non-options are skipped (argv permutation) unless
``POSIXLY_CORRECT`` is set, ``--name`` is read as the letters ``-``, ``n``, ``a``, ... (there
are no long options), and an unknown letter or missing argument prints glibc's message and
yields ``?``, which the agents map to help (usage, exit 0).
"""

from __future__ import annotations

import os

from fence_virt.agents.console import warn

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


def getopt(argv: Sequence[str], optstring: str) -> Iterator[tuple[str, str | None]]:
    """Yield ``(letter, argument)`` per option; ``("?", None)`` for each error."""
    posix = "POSIXLY_CORRECT" in os.environ
    index = 1
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == "--":
            return
        if not word.startswith("-") or word == "-":
            if posix:
                return
            continue
        position = 1
        while position < len(word):
            letter = word[position]
            position += 1
            kind = _kind(letter, optstring)
            if kind is None:
                warn(f"{argv[0]}: invalid option -- '{letter}'")
                yield "?", None
                continue
            if kind == "flag":
                yield letter, None
                continue
            rest = word[position:]
            if rest or kind == "optional":
                yield letter, rest or None
            elif index < len(argv):
                yield letter, argv[index]
                index += 1
            else:
                warn(f"{argv[0]}: option requires an argument -- '{letter}'")
                yield "?", None
            break


def _kind(letter: str, optstring: str) -> str | None:
    """``flag``, ``required`` or ``optional`` argument; None if not an option letter."""
    at = optstring.find(letter)
    if at < 0 or letter in ":;":
        return None
    if optstring[at + 1 : at + 3] == "::":
        return "optional"
    if optstring[at + 1 : at + 2] == ":":
        return "required"
    return "flag"
