"""Where a plugin's block lives in the configuration."""

from __future__ import annotations

from fence_virt.config import ConfigNode, ConfigSection, ConfigTree
from fence_virt.plugins.discovery import PluginKind

__all__ = ["plugin_block", "plugin_section"]


def plugin_block(config: ConfigTree, kind: PluginKind, name: str) -> ConfigNode | None:
    """The node ``listeners { NAME { ... } }`` (``backends``, ``extensions``), or ``None``."""
    top = config.child(kind.section)
    return top.child(name) if top is not None else None


def plugin_section(config: ConfigTree, kind: PluginKind, name: str) -> ConfigSection:
    """The block of plugin (or listener instance) ``name`` of ``kind``, as hooks receive it.

    Its ``source`` is the block's own origin (a config source may assemble the tree from
    several files: :mod:`fence_virt.config.sources`), else the tree's.
    """
    node = plugin_block(config, kind, name)
    source = node.source if node is not None and node.source else config.source
    return ConfigSection(path=f"{kind.section}/{name}", node=node, source=source)
