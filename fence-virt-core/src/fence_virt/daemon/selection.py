"""Choose the listener and the backend: by name from the config, or by what can run here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.daemon.defaults import BACKEND_PREFERENCE, LISTENER_PREFERENCE
from fence_virt.errors import PluginError, UserError
from fence_virt.plugins import (
    PluginEntry,
    PluginHooks,
    PluginKind,
    build_plugin_manager,
    discover,
    load_named,
)
from fence_virt.types import Availability

__all__ = ["Selection", "check_entry", "hooks_for", "plugin_section", "rank", "select_plugin"]

log = logging.getLogger("fence_virt.selection")


@dataclass(frozen=True)
class Selection:
    entry: PluginEntry
    #: why this plugin: "named in fence_virt.conf" or the availability reason
    why: str


def plugin_section(config: ConfigTree, kind: PluginKind, name: str) -> ConfigNode | None:
    """The plugin's own block: ``listeners { NAME {...} }`` or ``backends { NAME {...} }``."""
    return config.node(f"{kind.value}s/{name}")


def hooks_for(entry: PluginEntry) -> PluginHooks:
    """A facade over a manager holding only ``entry``."""
    return PluginHooks(build_plugin_manager(entry), **{entry.kind.value: entry})


def check_entry(
    entry: PluginEntry, config: ConfigTree, hooks: PluginHooks | None = None
) -> Availability:
    """Ask one loaded plugin whether it can run here (through a manager of its own)."""
    hooks = hooks or hooks_for(entry)
    section = plugin_section(config, entry.kind, entry.name)
    if entry.kind is PluginKind.LISTENER:
        return hooks.listener_check(section, config)
    return hooks.backend_check(section, config)


def rank(entries: Sequence[PluginEntry], kind: PluginKind) -> list[PluginEntry]:
    """Entries in the documented preference order; unknown (third-party) names after, by name."""
    order = LISTENER_PREFERENCE if kind is PluginKind.LISTENER else BACKEND_PREFERENCE

    def key(entry: PluginEntry) -> tuple[int, str]:
        name = entry.name.casefold()
        return (order.index(name) if name in order else len(order), name)

    return sorted(entries, key=key)


def select_plugin(kind: PluginKind, config: ConfigTree) -> Selection:
    """Load the configured plugin of ``kind``, or pick the first usable one.

    Raises :class:`PluginError` if any candidate fails to load (never skipped) and
    :class:`UserError` if no installed plugin can run here.
    """
    name = config.get(f"fence_virtd/@{kind.value}")
    if name:
        return Selection(load_named(kind, name), f"named in {config.source or 'the configuration'}")
    entries = discover(kind)
    for entry in entries:
        if entry.error is not None:
            raise PluginError(
                entry.error, plugin=f"{kind.group}:{entry.name}", distribution=entry.distribution
            )
    if not entries:
        raise UserError(
            f"no {kind} plugin is installed (pip install fence-virt-{kind.value}-<name>)"
        )
    refusals: list[str] = []
    for entry in rank(entries, kind):
        availability = check_entry(entry, config)
        if availability.usable:
            for refused in refusals:
                log.info("not using %s", refused)
            return Selection(entry, f"picked automatically: {availability.reason}")
        refusals.append(f"{kind} {entry.name}: {availability.reason}")
    raise UserError(f"no installed {kind} can run here: " + "; ".join(refusals))
