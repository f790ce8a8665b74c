"""``fence_virt.conf``: the C grammar, an immutable tree with C lookup semantics, typed sections.

* :func:`load_file` / :func:`parse_text` read a file into a :class:`ConfigTree`
  (deviations from the C parser are listed in :mod:`fence_virt.config.parser`);
* :class:`ConfigTree` / :class:`ConfigNode` / :class:`ConfigValue` keep file order and line
  numbers, look paths up like C (``fence_virtd/@listener``) and dump in the C format;
* :func:`load_section` turns one section into a frozen dataclass, reporting bad values as
  :class:`~fence_virt.errors.ConfigError` at ``file:line`` and unknown keys as
  :class:`ConfigWarning`; ``Annotated[int, PORT]``-style :class:`Check` conditions run on
  each value;
* :class:`ConfigSection` is one plugin's block as its hooks receive it: ``load(schema)`` and
  ``error(key, message)`` name the file, line and block path for the plugin.
"""

from __future__ import annotations

from fence_virt.config.checks import (
    ABSOLUTE_PATH,
    NON_NEGATIVE,
    PORT,
    POSITIVE,
    Check,
    at_least,
    in_range,
)
from fence_virt.config.parser import MAX_DEPTH, load_file, parse_text
from fence_virt.config.section import ConfigSection
from fence_virt.config.sections import ConfigWarning, load_section
from fence_virt.config.tree import ConfigNode, ConfigTree, ConfigValue

__all__ = [
    "ABSOLUTE_PATH",
    "MAX_DEPTH",
    "NON_NEGATIVE",
    "PORT",
    "POSITIVE",
    "Check",
    "ConfigNode",
    "ConfigSection",
    "ConfigTree",
    "ConfigValue",
    "ConfigWarning",
    "at_least",
    "in_range",
    "load_file",
    "load_section",
    "parse_text",
]
