"""The pluggy manager factory: one fresh manager per use, never one at import time."""

from __future__ import annotations

import pluggy

from fence_virt import hookspecs
from fence_virt.errors import PluginError
from fence_virt.plugins.discovery import PluginEntry, PluginKind

__all__ = ["REQUIRED_BACKEND_HOOKS", "REQUIRED_LISTENER_HOOKS", "build_plugin_manager"]

#: hooks a listener plugin must implement to be usable
REQUIRED_LISTENER_HOOKS = ("fence_virt_listener_check", "fence_virt_listener_create")
#: hooks a backend plugin must implement: a backend that cannot "off" cannot fence
REQUIRED_BACKEND_HOOKS = (
    "fence_virt_backend_check",
    "fence_virt_backend_start",
    "fence_virt_backend_stop",
    "fence_virt_backend_null",
    "fence_virt_backend_off",
    "fence_virt_backend_on",
    "fence_virt_backend_reboot",
    "fence_virt_backend_status",
    "fence_virt_backend_devstatus",
    "fence_virt_backend_hostlist",
)


def _required(kind: PluginKind) -> tuple[str, ...]:
    return REQUIRED_LISTENER_HOOKS if kind is PluginKind.LISTENER else REQUIRED_BACKEND_HOOKS


def _register(pm: pluggy.PluginManager, entry: PluginEntry) -> None:
    plugin = entry.instantiate()
    label = f"{entry.kind.group}:{entry.name}"
    try:
        pm.register(plugin, name=label)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(
            f"cannot register: {exc}", plugin=label, distribution=entry.distribution
        ) from exc
    implemented = {impl_caller.name for impl_caller in pm.get_hookcallers(plugin) or []}
    missing = [hook for hook in _required(entry.kind) if hook not in implemented]
    if missing:
        raise PluginError(
            f"does not implement required hooks: {', '.join(missing)}",
            plugin=label,
            distribution=entry.distribution,
        )


def build_plugin_manager(*entries: PluginEntry) -> pluggy.PluginManager:
    """Return a new manager holding the hook specs and exactly the given plugins.

    Give it at most one listener and one backend: every hook is ``firstresult``, so a second
    backend would silently shadow the first. Raises :class:`PluginError` naming the plugin and
    its distribution when one cannot be instantiated, registered, or lacks a required hook.
    """
    kinds = [e.kind for e in entries]
    for kind in PluginKind:
        if kinds.count(kind) > 1:
            names = ", ".join(e.name for e in entries if e.kind is kind)
            raise PluginError(f"only one {kind} may be active, got: {names}", plugin=names)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for entry in entries:
        _register(pm, entry)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc), plugin=str(exc.plugin)) from exc
    return pm
