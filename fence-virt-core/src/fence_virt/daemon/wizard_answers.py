"""The answers of ``fence_virtd -c --answer ID=VALUE ...``: the wizard without a terminal.

Configuration management (Ansible, Puppet, Salt) runs the wizard as one command: each
``--answer`` names a question by the config key it sets -- ``BLOCK/.../KEY``, the path of
the key in the file (``fence_virtd/listener``, ``listeners/multicast/port``,
``backends/libvirt/uri``) -- so an answer never lands on the wrong question when a later
version asks one more. A question without an answer takes the default the interactive run
would show (the file's own value, else C's). A key that is asked several times
(``fence_virtd/listener``: one per listener instance) takes its answers in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from fence_virt.errors import UserError

__all__ = ["Answers", "parse_answers"]


class Answers:
    """Answers by question id, each id's answers in the order given."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._left: dict[str, list[str]] = {}
        for key, value in pairs:
            self._left.setdefault(_normal(key), []).append(value)

    def take(self, key: str) -> str | None:
        """The next answer for ``key`` (used up), or ``None`` if none is left."""
        left = self._left.get(_normal(key))
        return left.pop(0) if left else None

    def peek(self, key: str) -> str | None:
        """The next answer for ``key``, left in place."""
        left = self._left.get(_normal(key))
        return left[0] if left else None

    def has(self, key: str) -> bool:
        """Whether an answer for ``key`` is still left."""
        return bool(self._left.get(_normal(key)))

    def unused(self) -> list[str]:
        """``ID=VALUE`` of every answer no question took (a misspelt id, a key of a plugin
        that was not chosen), in the order of the ids."""
        return [f"{key}={value}" for key, values in self._left.items() for value in values]


def _normal(key: str) -> str:
    """Config names are compared without case, as in C."""
    return key.strip("/").casefold()


def parse_answers(texts: Iterable[str]) -> Answers:
    """``ID=VALUE`` texts (``--answer`` options) as :class:`Answers`.

    :raises UserError: a text without ``=`` or with an empty id.
    """
    pairs: list[tuple[str, str]] = []
    for text in texts:
        key, equals, value = text.partition("=")
        if not equals or not key.strip("/ "):
            raise UserError(
                f"--answer {text!r}: expected ID=VALUE, e.g. listeners/multicast/port=1229"
            )
        pairs.append((key.strip(), value))
    return Answers(pairs)
