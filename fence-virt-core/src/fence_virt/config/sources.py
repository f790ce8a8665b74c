"""Configuration sources: where ``fence_virtd`` gets its :class:`ConfigTree` from.

A source is a plugin like listeners and backends: an object found through an entry point in
the group :data:`CONFIG_SOURCE_GROUP` (a class is instantiated with no arguments), chosen
with ``fence_virtd --config-source NAME`` (default :data:`DEFAULT_CONFIG_SOURCE`, this
module's :class:`FileSource`, which reads one ``fence_virt.conf``). Whatever the source,
every plugin then receives the same typed view: a :class:`ConfigTree` of
:class:`~fence_virt.config.ConfigNode` blocks, from which core cuts each plugin's
:class:`~fence_virt.config.ConfigSection`.

**Where a value came from.** Messages name ``node.source`` and the entry's line (see
:meth:`ConfigNode.error` and :func:`~fence_virt.config.load_section`, which prefer a block's
own ``source`` to the tree's). A source that assembles one tree from several origins keeps,
on every block it takes over, the ``source`` and ``line`` it had in its own origin -- so an
error in a plugin's block names the file (or other origin) and line the block was written in,
however the tree was put together. Entries (:class:`~fence_virt.config.ConfigValue`) carry a
line but no source: a source must therefore never move an entry into a block read from
another origin (merge whole blocks, as the ``dropin`` source of
``fence-virt-config-dropin`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from fence_virt.config.parser import load_file
from fence_virt.config.tree import ConfigTree
from fence_virt.errors import UserError
from fence_virt.files import secret_file_problem

__all__ = ["CONFIG_SOURCE_GROUP", "DEFAULT_CONFIG_SOURCE", "ConfigSource", "FileSource"]

#: the entry-point group of configuration sources
CONFIG_SOURCE_GROUP = "fence_virt.config_sources"
#: the source used without ``--config-source``
DEFAULT_CONFIG_SOURCE = "conf"


@runtime_checkable
class ConfigSource(Protocol):
    """What an entry point of :data:`CONFIG_SOURCE_GROUP` provides."""

    def exists(self, location: str) -> bool:
        """Whether there is a configuration at ``location`` (``-f``, default
        ``/etc/fence_virt.conf``); without one the daemon runs on its embedded default,
        unless the operator named the location."""
        ...

    def load(self, location: str) -> ConfigTree:
        """The whole configuration at ``location``.

        :raises fence_virt.errors.ConfigError: a bad entry, naming its origin and line.
        :raises fence_virt.errors.UserError: the location cannot be read.
        """
        ...


class FileSource:
    """The built-in source ``conf``: one ``fence_virt.conf`` file in the C grammar."""

    def exists(self, location: str) -> bool:
        return Path(location).exists()

    def load(self, location: str) -> ConfigTree:
        """Parse the file. :raises UserError: not a regular file (a FIFO would block the
        read forever, ``/dev/zero`` fill memory). :raises ConfigError: at file:line."""
        problem = secret_file_problem(Path(location), what="config file")
        if problem is not None:
            raise UserError(problem)
        return load_file(location)
