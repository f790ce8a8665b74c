"""What a plugin receives: its own block of the configuration, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from fence_virt.config.sections import ConfigWarning, load_section
from fence_virt.config.tree import ConfigNode
from fence_virt.errors import ConfigError

__all__ = ["ConfigSection"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConfigSection:
    """One plugin instance's block, e.g. ``listeners { multicast { ... } }``.

    The daemon hands every plugin hook one of these, whether or not the block is written in
    the file (``node is None`` then: every setting takes its default). Plugins read it with
    :meth:`load` and report a bad value with :meth:`error`, so messages always name the file
    and line, and the block's path.
    """

    #: where the block lives, for messages: ``listeners/multicast``, ``backends/libvirt``
    path: str
    #: the block itself, ``None`` when the file has none
    node: ConfigNode | None = None
    #: the configuration's file name (``None`` for text built in code)
    source: str | None = None

    @property
    def name(self) -> str:
        """The block's name: the plugin name, or a listener instance's own name."""
        return self.path.rpartition("/")[2]

    @property
    def present(self) -> bool:
        """True when the configuration has this block."""
        return self.node is not None

    def load(self, schema: type[T], *, warnings: list[ConfigWarning] | None = None) -> T:
        """The block as a ``schema`` dataclass (see :func:`fence_virt.config.load_section`).

        :raises fence_virt.errors.ConfigError: a bad or missing value, at its ``file:line``.
        """
        return load_section(
            self.node, schema, where=self.path, source=self.source, warnings=warnings
        )

    def error(self, key: str | None, message: str) -> ConfigError:
        """A :class:`ConfigError` ``file:line: PATH: message`` for ``key`` in this block.

        The line is that of ``key``'s last entry, else the block's own line; with no block
        in the file, the message names the file only.

        :returns: the error, for the caller to raise.
        """
        text = f"{self.path}: {message}"
        if self.node is None:
            return ConfigError(text, path=self.source)
        error = self.node.error(key, text)
        if error.path is None and self.source is not None:
            return ConfigError(text, path=self.source, line=error.line)
        return error
