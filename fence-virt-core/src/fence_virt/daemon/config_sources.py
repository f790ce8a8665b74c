"""Find the configuration source ``fence_virtd --config-source NAME`` names (entry points in
:data:`fence_virt.config.sources.CONFIG_SOURCE_GROUP`; the contract:
:mod:`fence_virt.config.sources`)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from fence_virt.config.sources import CONFIG_SOURCE_GROUP, ConfigSource
from fence_virt.errors import PluginError, UserError

__all__ = ["find_config_source", "installed_config_sources"]


def installed_config_sources() -> list[str]:
    """The names of every installed configuration source, sorted."""
    return sorted({ep.name for ep in entry_points(group=CONFIG_SOURCE_GROUP)})


def find_config_source(name: str) -> ConfigSource:
    """The source entry point ``name`` provides, instantiated if it names a class.

    :raises UserError: no source of that name is installed (the message lists those that are).
    :raises PluginError: the entry point does not load, or its object is not a source; the
        message names the entry point and its distribution.
    """
    found = sorted(entry_points(group=CONFIG_SOURCE_GROUP, name=name), key=lambda ep: ep.value)
    if not found:
        installed = ", ".join(installed_config_sources()) or "none"
        raise UserError(f"no config source {name!r} is installed (installed: {installed})")
    entry = found[0]
    try:
        loaded = entry.load()
        source = loaded() if isinstance(loaded, type) else loaded
    except Exception as exc:
        raise _error(entry, f"does not load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(source, ConfigSource):
        raise _error(entry, "is not a config source (needs exists() and load())")
    return source


def _error(entry: EntryPoint, message: str) -> PluginError:
    """``plugin 'NAME' (DIST): config source VALUE MESSAGE``."""
    dist = entry.dist.name if entry.dist is not None else None
    return PluginError(
        f"config source {entry.value} {message}", plugin=entry.name, distribution=dist
    )
