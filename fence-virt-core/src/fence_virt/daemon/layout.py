"""The shape of fence_virtd's configuration, checked before any plugin is chosen.

C ignores a block it does not know and lets the last of two same-named blocks win silently.
For a fencing daemon both hide mistakes that matter: a misspelt ``groups`` block (or a
``group`` written without it) leaves every VM open to every guest, and a second ``listeners``
block drops the first one's settings. So here, with ``file:line``:

* a top-level block other than ``fence_virtd``, ``listeners``, ``backends``, ``groups`` and
  ``extensions`` is an error (with a suggestion);
* each of those but ``extensions`` (whose blocks all count) may appear once, and the blocks
  inside ``listeners`` and ``backends`` have distinct names;
* a listener instance's name is a plain word (letters, digits, ``_ . -``): it is a block
  name, a log name and part of every request's log line.
"""

from __future__ import annotations

import difflib
import re

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.errors import ConfigError

__all__ = [
    "INSTANCE_NAME",
    "KNOWN_BLOCKS",
    "check_instance_names",
    "check_layout",
    "listener_error",
]

#: top-level blocks fence_virtd reads
KNOWN_BLOCKS = ("fence_virtd", "listeners", "backends", "groups", "extensions")
#: top-level blocks that may be written several times (their contents add up)
_REPEATABLE = frozenset({"extensions"})
#: blocks whose inner blocks are named plugins or instances, one block per name
_NAMED_INNER = ("listeners", "backends")
#: what a listener instance may be called
INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _twice(second: ConfigNode, first: ConfigNode, what: str) -> ConfigError:
    return second.error(None, f"{what} is written twice (first at line {first.line}): merge them")


def check_layout(config: ConfigTree) -> None:
    """Refuse unknown and repeated blocks (see the module docstring).

    :raises fence_virt.errors.ConfigError: naming the block's file and line.
    """
    seen: dict[str, ConfigNode] = {}
    for node in config.children:
        name = node.name.casefold()
        if name not in KNOWN_BLOCKS:
            close = difflib.get_close_matches(name, KNOWN_BLOCKS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise node.error(
                None, f"unknown block {node.name!r} ({hint}known: {', '.join(KNOWN_BLOCKS)})"
            )
        if name in seen and name not in _REPEATABLE:
            raise _twice(node, seen[name], f"block {node.name!r}")
        seen.setdefault(name, node)
    for outer in _NAMED_INNER:
        top = config.child(outer)
        inner: dict[str, ConfigNode] = {}
        for node in top.children if top is not None else ():
            if node.name.casefold() in inner:
                raise _twice(node, inner[node.name.casefold()], f"{outer}/{node.name}")
            inner[node.name.casefold()] = node


def listener_error(config: ConfigTree, name: str, message: str, *, nth: int = 0) -> ConfigError:
    """A ConfigError at the ``nth`` (0: first) ``listener = "name";`` line of ``fence_virtd``."""
    settings = config.child("fence_virtd")
    text = f"fence_virtd: {message}"
    if settings is None:
        return ConfigError(text, path=config.source)
    lines = [
        e.line for e in settings.values_named("listener") if e.value.casefold() == name.casefold()
    ]
    line = lines[nth] if nth < len(lines) else settings.line
    return ConfigError(text, path=settings.source or config.source, line=line or None)


def check_instance_names(config: ConfigTree, names: tuple[str, ...]) -> None:
    """Refuse an instance named twice, or a name that cannot serve as a block and log name.

    :raises fence_virt.errors.ConfigError: at the offending ``listener`` line.
    """
    seen: set[str] = set()
    for name in names:
        if not INSTANCE_NAME.fullmatch(name):
            raise listener_error(
                config,
                name,
                f'listener "{name}" is not a plain name '
                "(letters, digits, '_', '.', '-'; starting with a letter or digit)",
            )
        if name.casefold() in seen:
            raise listener_error(config, name, f'listener "{name}" is named twice', nth=1)
        seen.add(name.casefold())
