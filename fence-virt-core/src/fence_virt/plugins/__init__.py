"""Finding, loading and calling plugins: entry-point discovery, manager factory, typed facade."""

from fence_virt.plugins.discovery import (
    BACKEND_GROUP,
    EXTENSION_GROUP,
    LISTENER_GROUP,
    PluginEntry,
    PluginKind,
    discover,
    load_named,
)
from fence_virt.plugins.facade import PluginHooks
from fence_virt.plugins.manager import build_plugin_manager
from fence_virt.plugins.sections import plugin_block, plugin_section

__all__ = [
    "BACKEND_GROUP",
    "EXTENSION_GROUP",
    "LISTENER_GROUP",
    "PluginEntry",
    "PluginHooks",
    "PluginKind",
    "build_plugin_manager",
    "discover",
    "load_named",
    "plugin_block",
    "plugin_section",
]
