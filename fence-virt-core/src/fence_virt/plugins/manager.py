"""The pluggy manager factory: one fresh manager per use, never one at import time."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Sequence

import pluggy

from fence_virt import hookspecs
from fence_virt.errors import PluginError
from fence_virt.plugins.discovery import PluginEntry, PluginKind

__all__ = ["CROSS_CUTTING_HOOKS", "REQUIRED_HOOKS", "build_plugin_manager"]

#: hooks every plugin of a kind must implement: a backend that cannot build a backend object
#: cannot fence, and one that cannot say whether it runs here would be picked blindly
REQUIRED_HOOKS = {
    PluginKind.LISTENER: ("fence_virt_listener_check", "fence_virt_listener_create"),
    PluginKind.BACKEND: ("fence_virt_backend_check", "fence_virt_backend_create"),
    PluginKind.EXTENSION: (),
}
#: hooks called on every plugin that implements them; an extension must implement one
CROSS_CUTTING_HOOKS = ("fence_virt_authorize", "fence_virt_request_finished")


def _one_line(exc: Exception) -> str:
    """pluggy's validation messages span lines and show object reprs: one line, no repr."""
    text = " ".join(str(exc).split())
    return re.sub(r" in plugin <[^>]*>", "", text)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks ``plugin`` implements that have no spec: misspellings, each with a suggestion."""
    specs = [name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT_NAME}_")]
    unknown = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            close = difflib.get_close_matches(caller.name, specs, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            unknown.append(f"{caller.name!r}{hint}")
    return unknown


def _coroutine_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks ``plugin`` implements as coroutine functions: core calls hooks synchronously."""
    return [
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin and inspect.iscoroutinefunction(impl.function)
    ]


def _register(pm: pluggy.PluginManager, entry: PluginEntry) -> None:
    plugin = entry.instantiate()
    try:
        pm.register(plugin, name=entry.label)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise entry.failure(f"cannot register: {_one_line(exc)}") from exc
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        raise entry.failure(f"implements hooks that do not exist: {', '.join(unknown)}")
    coroutines = _coroutine_hooks(pm, plugin)
    if coroutines:
        names = ", ".join(coroutines)
        raise entry.failure(f"hooks must be plain def, not async def (never run): {names}")
    implemented = {caller.name for caller in pm.get_hookcallers(plugin) or []}
    missing = [hook for hook in REQUIRED_HOOKS[entry.kind] if hook not in implemented]
    if missing:
        raise entry.failure(f"does not implement required hooks: {', '.join(missing)}")
    if entry.kind is PluginKind.EXTENSION and not implemented & set(CROSS_CUTTING_HOOKS):
        raise entry.failure(
            f"implements none of the extension hooks ({', '.join(CROSS_CUTTING_HOOKS)})"
        )


def build_plugin_manager(entries: Sequence[PluginEntry]) -> pluggy.PluginManager:
    """Return a new manager holding the hook specs and exactly the given plugins.

    Any number of listener plugins and extensions, at most one backend. Each plugin is
    registered once, under its label ``group:name``, however many listener instances use it.

    :raises fence_virt.errors.PluginError: naming the plugin and its distribution when one
        cannot be instantiated or registered, lacks a required hook, implements a hook that
        does not exist (a misspelling), or when two backends are given.
    """
    backends = [e.name for e in entries if e.kind is PluginKind.BACKEND]
    if len(backends) > 1:
        names = ", ".join(backends)
        raise PluginError(f"only one backend may be active, got: {names}", plugin=names)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for entry in {e.label: e for e in entries}.values():
        _register(pm, entry)
    # every plugin was checked for unknown hooks as it registered; this is pluggy's own
    # guarantee of the same, kept in case a hook is added to a plugin after registration
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin = pm.get_name(exc.plugin) or str(exc.plugin)
        raise PluginError(_one_line(exc), plugin=plugin) from exc
    return pm
