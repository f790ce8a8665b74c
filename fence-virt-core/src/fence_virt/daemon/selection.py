"""Which plugins a daemon runs, with which blocks: the backend, listener instances, extensions.

Listener instances (docs/architecture.md, "Several listeners in one daemon"): every
``listener = "NAME";`` in ``fence_virtd`` names an instance whose block is
``listeners { NAME { ... } }``. The block's ``plugin`` key says which listener plugin serves
it and defaults to ``NAME`` itself, so a C config (one ``listener = "multicast";`` and a
``multicast`` block) keeps its meaning. An instance's own ``groups { ... }`` block is its
static map; without one, the top-level ``groups`` map applies (as in C).

The backend is ``backend = "NAME";`` with ``backends { NAME { ... } }``. Without a
``listener``/``backend`` line, the one block written inside ``listeners``/``backends`` names
the plugin (several blocks: an error); without any, the daemon picks an installed plugin by
what can run here -- never one of the test kit's in-memory plugins. Extensions run when
their block ``extensions { NAME { ... } }`` exists.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fence_virt.config import ConfigNode, ConfigSection, ConfigTree
from fence_virt.daemon.defaults import BACKEND_PREFERENCE, LISTENER_PREFERENCE
from fence_virt.daemon.layout import check_instance_names, check_layout
from fence_virt.daemon.settings import daemon_settings
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import ConfigError, UserError
from fence_virt.plugins import (
    PluginEntry,
    PluginHooks,
    PluginKind,
    build_plugin_manager,
    discover,
    load_named,
    plugin_block,
    plugin_section,
)
from fence_virt.types import Availability

__all__ = [
    "DaemonPlan",
    "ExtensionPlan",
    "ListenerPlan",
    "check_entry",
    "extension_blocks",
    "hooks_for",
    "plan_daemon",
    "rank",
]

log = logging.getLogger("fence_virt.selection")

#: key of a listener instance's block naming the plugin that serves it
PLUGIN_KEY = "plugin"
#: child block of a listener instance holding its own static map
GROUPS_BLOCK = "groups"


@dataclass(frozen=True)
class ListenerPlan:
    """One listener instance to build."""

    #: the instance's name: its block's name, used in logs and by observers
    name: str
    entry: PluginEntry
    #: the block as the plugin sees it (without ``plugin`` and ``groups``)
    section: ConfigSection
    static_map: StaticMap
    #: why this plugin: "named in FILE" or the availability reason
    why: str


@dataclass(frozen=True)
class ExtensionPlan:
    entry: PluginEntry
    section: ConfigSection


@dataclass(frozen=True)
class DaemonPlan:
    """Everything chosen from the configuration, before any plugin object is built."""

    backend: PluginEntry
    backend_section: ConfigSection
    backend_why: str
    listeners: tuple[ListenerPlan, ...]
    extensions: tuple[ExtensionPlan, ...]

    @property
    def entries(self) -> list[PluginEntry]:
        """Every plugin to register, each once."""
        found = [self.backend, *(p.entry for p in self.listeners)]
        found.extend(p.entry for p in self.extensions)
        return list({entry.label: entry for entry in found}.values())


def hooks_for(entry: PluginEntry) -> PluginHooks:
    """A facade over a manager holding only ``entry``."""
    return PluginHooks(build_plugin_manager([entry]), [entry])


def check_entry(
    entry: PluginEntry, config: ConfigTree, hooks: PluginHooks | None = None
) -> Availability:
    """Ask one loaded plugin whether it can run here (through a manager of its own)."""
    hooks = hooks or hooks_for(entry)
    section = plugin_section(config, entry.kind, entry.name)
    if entry.kind is PluginKind.LISTENER:
        return hooks.listener_check(entry, section, config)
    if entry.kind is PluginKind.BACKEND:
        return hooks.backend_check(entry, section, config)
    enabled = extension_blocks(config).get(entry.name.casefold())
    if enabled is not None:
        return Availability.yes(f"enabled by its block {enabled.path}")
    return Availability.no(f"not enabled (add a block {section.path} {{ }})")


def rank(entries: Sequence[PluginEntry], kind: PluginKind) -> list[PluginEntry]:
    """Entries in the documented preference order; unknown (third-party) names after, by name."""
    order = {PluginKind.LISTENER: LISTENER_PREFERENCE, PluginKind.BACKEND: BACKEND_PREFERENCE}
    preferred = order.get(kind, ())

    def key(entry: PluginEntry) -> tuple[int, str]:
        name = entry.name.casefold()
        return (preferred.index(name) if name in preferred else len(preferred), name)

    return sorted(entries, key=key)


def _pick(kind: PluginKind, config: ConfigTree) -> tuple[PluginEntry, str]:
    """The first installed plugin of ``kind`` that says it can run here, and why.

    Plugins of the test kit (``fence_virt.testing``: the in-memory listener and backend) are
    never picked this way: a daemon must not fall back on a backend that fences nothing.
    """
    entries = discover(kind)
    for entry in entries:
        if entry.error is not None:
            raise entry.failure(entry.error)
    candidates = [entry for entry in entries if not entry.test_only]
    if not candidates:
        example = "multicast" if kind is PluginKind.LISTENER else "libvirt"
        tests = ", ".join(entry.name for entry in entries)
        also = (
            f"; the test plugins installed ({tests}) are never picked automatically"
            if tests
            else ""
        )
        raise UserError(
            f"no {kind} plugin is installed (install one, e.g. fence-virt-{kind.value}-"
            f"{example}){also}"
        )
    refusals: list[str] = []
    for entry in rank(candidates, kind):
        availability = check_entry(entry, config)
        if availability.usable:
            for refused in refusals:
                log.info("not using %s", refused)
            return entry, f"picked automatically: {availability.reason}"
        refusals.append(f"{kind} {entry.name}: {availability.reason}")
    raise UserError(f"no installed {kind} can run here: " + "; ".join(refusals))


def _named_in(config: ConfigTree) -> str:
    return f"named in {config.source or 'the configuration'}"


def _only_block(config: ConfigTree, kind: PluginKind) -> ConfigNode | None:
    """The one block inside ``listeners``/``backends``, when no line names a plugin.

    A configuration that writes a block for a plugin means that plugin: it is used (and
    fails loudly if it cannot run), never another one that happens to be installed.

    :raises fence_virt.errors.ConfigError: several blocks and no line saying which to run.
    """
    top = config.child(kind.section)
    blocks = top.children if top is not None else ()
    if len(blocks) > 1:
        names = ", ".join(block.name for block in blocks)
        assert top is not None
        raise top.error(
            None,
            f"{kind.section}: several blocks ({names}) and no {kind.value} line in "
            f'fence_virtd: say which to run ({kind.value} = "NAME";)',
        )
    return blocks[0] if blocks else None


def _chosen_by(block: ConfigNode) -> str:
    return f"chosen by its block at {block.source}:{block.line}"


def _backend(config: ConfigTree, name: str | None) -> tuple[PluginEntry, str]:
    if name:
        return load_named(PluginKind.BACKEND, name), _named_in(config)
    block = _only_block(config, PluginKind.BACKEND)
    if block is not None:
        return load_named(PluginKind.BACKEND, block.name), _chosen_by(block)
    return _pick(PluginKind.BACKEND, config)


def _listener(config: ConfigTree, instance: str, why: str) -> ListenerPlan:
    """The plan of the listener instance ``instance`` (see the module docstring)."""
    node = plugin_block(config, PluginKind.LISTENER, instance)
    plugin = instance
    static_map = StaticMap.from_config(config)
    if node is not None:
        for stray in node.children_named("group"):
            raise stray.error(
                None, f"listeners/{instance}: a group block belongs inside groups {{ }}"
            )
        plugins = [(e.line, f"key {e.key!r}") for e in node.values_named(PLUGIN_KEY)]
        _refuse_twice(instance, plugins, config.source)
        maps = [(c.line, f"block {c.name!r}") for c in node.children_named(GROUPS_BLOCK)]
        _refuse_twice(instance, maps, config.source)
        plugin_entry = node.entry(PLUGIN_KEY)
        plugin = plugin_entry.value if plugin_entry is not None else instance
        if (groups := node.child(GROUPS_BLOCK)) is not None:
            static_map = StaticMap.from_node(groups, instance=instance)
        node = dataclasses.replace(
            node,
            values=tuple(v for v in node.values if v.key.casefold() != PLUGIN_KEY),
            children=tuple(c for c in node.children if c.name.casefold() != GROUPS_BLOCK),
        )
    # the block's own origin: a config source may assemble the tree from several files
    origin = node.source if node is not None and node.source else config.source
    section = ConfigSection(f"listeners/{instance}", node, origin)
    return ListenerPlan(instance, load_named(PluginKind.LISTENER, plugin), section, static_map, why)


def _refuse_twice(instance: str, where: list[tuple[int, str]], source: str | None) -> None:
    """``plugin`` and ``groups`` are ours (C has neither): one of each per instance, since
    the last of two would silently choose the plugin or the static map."""
    if len(where) > 1:
        (first, _), (line, what) = where[0], where[1]
        raise ConfigError(
            f"listeners/{instance}: {what} is written twice (first at line {first}): keep one",
            path=source,
            line=line or None,
        )


def _listeners(config: ConfigTree, names: tuple[str, ...]) -> tuple[ListenerPlan, ...]:
    if names:
        check_instance_names(config, names)
        return tuple(_listener(config, name, _named_in(config)) for name in names)
    block = _only_block(config, PluginKind.LISTENER)
    if block is not None:
        check_instance_names(config, (block.name,))
        return (_listener(config, block.name, _chosen_by(block)),)
    entry, why = _pick(PluginKind.LISTENER, config)
    return (_listener(config, entry.name, why),)


def extension_blocks(config: ConfigTree) -> dict[str, ConfigSection]:
    """Every extension block, from every top-level ``extensions`` block, by folded name.

    Unlike C's blocks, where the last of a name wins, all ``extensions`` blocks count: an
    authorization extension must not be dropped because a second block was added below.

    :raises fence_virt.errors.ConfigError: an extension configured twice (file:line).
    """
    found: dict[str, ConfigSection] = {}
    for top in config.children_named(PluginKind.EXTENSION.section):
        for block in top.children:
            earlier = found.get(block.name.casefold())
            if earlier is not None:
                first = earlier.node.line if earlier.node is not None else 0
                raise block.error(
                    None, f"extensions/{block.name}: configured twice (first at line {first})"
                )
            path = f"{PluginKind.EXTENSION.section}/{block.name}"
            found[block.name.casefold()] = ConfigSection(path, block, block.source or config.source)
    return found


def _extensions(config: ConfigTree) -> tuple[ExtensionPlan, ...]:
    return tuple(
        ExtensionPlan(load_named(PluginKind.EXTENSION, section.name), section)
        for section in extension_blocks(config).values()
    )


def plan_daemon(config: ConfigTree) -> DaemonPlan:
    """Choose every plugin the configuration asks for and load it.

    :raises fence_virt.errors.ConfigError: a bad ``fence_virtd`` block (file:line).
    :raises fence_virt.errors.PluginError: a named or candidate plugin is missing or broken
        (never skipped).
    :raises fence_virt.errors.UserError: nothing installed can run here.
    """
    check_layout(config)
    settings = daemon_settings(config)
    listeners = _listeners(config, settings.listener)
    backend, why = _backend(config, settings.backend)
    return DaemonPlan(
        backend=backend,
        backend_section=plugin_section(config, PluginKind.BACKEND, backend.name),
        backend_why=why,
        listeners=listeners,
        extensions=_extensions(config),
    )
