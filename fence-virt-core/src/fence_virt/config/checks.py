"""Conditions a config value must meet, declared on the schema field with ``Annotated``::

    @dataclass(frozen=True)
    class TcpSection:
        port: Annotated[int, PORT] = 1229
        timeout: Annotated[float, POSITIVE] = 10.0
        backlog: Annotated[int, in_range(1, 4096)] = 64

:func:`fence_virt.config.load_section` runs every check after converting the value (for a
``tuple[X, ...]`` field, on each item) and turns a failure into a
:class:`~fence_virt.errors.ConfigError` at the value's ``file:line``, naming the key and
what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ABSOLUTE_PATH", "NON_NEGATIVE", "PORT", "POSITIVE", "Check", "at_least", "in_range"]


@dataclass(frozen=True, slots=True)
class Check:
    """A predicate on a converted value and how to say what it wanted."""

    test: Callable[[Any], bool]
    #: completes "expected ...", e.g. "a number from 1 to 65535"
    expected: str

    def __call__(self, value: object) -> None:
        """Raise :class:`ValueError` ("expected ...") unless ``value`` passes."""
        if not self.test(value):
            raise ValueError(f"expected {self.expected}")


def in_range(low: float, high: float) -> Check:
    """``low <= value <= high`` (both ends included)."""
    return Check(lambda value: low <= value <= high, f"a number from {low:g} to {high:g}")


def at_least(low: float) -> Check:
    """``value >= low``."""
    return Check(lambda value: value >= low, f"a number of at least {low:g}")


#: a TCP/UDP port number
PORT = in_range(1, 65535)
#: strictly above zero, e.g. a timeout in seconds
POSITIVE = Check(lambda value: value > 0, "a number above 0")
#: zero or more
NON_NEGATIVE = at_least(0)
#: a file the daemon writes: relative to which directory would be a guess
ABSOLUTE_PATH = Check(lambda value: Path(value).is_absolute(), "an absolute path")
