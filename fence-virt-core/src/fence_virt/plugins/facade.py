"""The typed facade over ``pm.hook``: the only code in fence-virt that calls a hook.

Factory hooks are called on the one plugin concerned (several listener plugins may share a
manager, so a plain ``firstresult`` call could reach the wrong one); cross-cutting hooks on
every plugin that implements them, one at a time, so that one failing plugin is named and
the others still run. Each method checks what a plugin returns, so a plugin that returns
garbage fails loudly with its name instead of leaking a wrong answer onto the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pluggy

from fence_virt.config import ConfigSection, ConfigTree
from fence_virt.errors import FenceVirtError
from fence_virt.plugins.discovery import PluginEntry
from fence_virt.protocol import HostState, Operation
from fence_virt.types import (
    Availability,
    Backend,
    DroppedRequest,
    FinishedRequest,
    Listener,
    Target,
)

__all__ = ["PluginHooks"]

log = logging.getLogger("fence_virt.plugins")

_AUTHORIZE = "fence_virt_authorize"
_FINISHED = "fence_virt_request_finished"
_STOPPED = "fence_virt_daemon_stopped"
_DROPPED = "fence_virt_request_dropped"
_BACKEND_STATE = "fence_virt_backend_state"
_STARTED = "fence_virt_daemon_started"


class PluginHooks:
    """Typed calls into the plugins registered in one plugin manager."""

    def __init__(self, pm: pluggy.PluginManager, entries: Sequence[PluginEntry]) -> None:
        self._pm = pm
        self._entries = {entry.label: entry for entry in entries}
        self._authorizers = self._callers(_AUTHORIZE)
        self._observers = self._callers(_FINISHED)
        self._stoppers = self._callers(_STOPPED)
        self._drop_observers = self._callers(_DROPPED)
        self._state_observers = self._callers(_BACKEND_STATE)
        self._starters = self._callers(_STARTED)

    # plumbing ---------------------------------------------------------------------------------

    def _call_one(self, hook: str, entry: PluginEntry, **kwargs: Any) -> Any:
        """Call ``hook`` on ``entry``'s plugin alone.

        Our own errors (a ConfigError naming file:line, ...) pass through; anything else a
        plugin raises is a bug in it and becomes a PluginError naming it.
        """
        plugin = self._pm.get_plugin(entry.label)
        if plugin is None:
            raise entry.failure("is not registered in this plugin manager")
        others = [p for p in self._pm.get_plugins() if p is not plugin]
        try:
            return self._pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)
        except FenceVirtError:
            raise
        except Exception as exc:
            log.debug("%s raised in %s", hook, entry.label, exc_info=True)
            raise entry.failure(f"{hook} raised {type(exc).__name__}: {exc}") from exc

    def _callers(self, hook: str) -> list[tuple[str, Any]]:
        """One caller per plugin implementing a cross-cutting hook: (plugin label, caller)."""
        callers = []
        for impl in getattr(self._pm.hook, hook).get_hookimpls():
            others = [p for p in self._pm.get_plugins() if p is not impl.plugin]
            callers.append((impl.plugin_name, self._pm.subset_hook_caller(hook, others)))
        return callers

    def _describe(self, label: str) -> str:
        entry = self._entries.get(label)
        return f"{label} ({entry.distribution})" if entry is not None else label

    @staticmethod
    def _availability(entry: PluginEntry, value: Any, hook: str) -> Availability:
        if not isinstance(value, Availability):
            raise entry.failure(f"{hook} returned {value!r}, expected Availability")
        return value

    # factory hooks ----------------------------------------------------------------------------

    def listener_check(
        self, entry: PluginEntry, section: ConfigSection, config: ConfigTree
    ) -> Availability:
        hook = "fence_virt_listener_check"
        value = self._call_one(hook, entry, section=section, config=config)
        return self._availability(entry, value, hook)

    def listener_create(
        self, entry: PluginEntry, section: ConfigSection, config: ConfigTree
    ) -> Listener:
        hook = "fence_virt_listener_create"
        value = self._call_one(hook, entry, section=section, config=config)
        if not isinstance(value, Listener):
            raise entry.failure(f"{hook} returned {_lacking(value, Listener)}, not a Listener")
        return value

    def backend_check(
        self, entry: PluginEntry, section: ConfigSection, config: ConfigTree
    ) -> Availability:
        hook = "fence_virt_backend_check"
        value = self._call_one(hook, entry, section=section, config=config)
        return self._availability(entry, value, hook)

    def backend_create(
        self, entry: PluginEntry, section: ConfigSection, config: ConfigTree
    ) -> Backend:
        hook = "fence_virt_backend_create"
        value = self._call_one(hook, entry, section=section, config=config)
        if not isinstance(value, Backend):
            raise entry.failure(f"{hook} returned {_lacking(value, Backend)}, not a Backend")
        return value

    def extension_configure(
        self, entry: PluginEntry, section: ConfigSection, config: ConfigTree
    ) -> object:
        """What the extension's hook returned: ``True``, or an object with its own checks
        (:class:`fence_virt.Diagnosable`) for ``fence_virtd --check``."""
        hook = "fence_virt_extension_configure"
        result: object = self._call_one(hook, entry, section=section, config=config)
        return result

    # cross-cutting hooks ----------------------------------------------------------------------

    @property
    def has_authorizers(self) -> bool:
        """Some plugin implements ``fence_virt_authorize`` (else there is nothing to ask)."""
        return bool(self._authorizers)

    @property
    def has_observers(self) -> bool:
        """Some plugin implements ``fence_virt_request_finished``."""
        return bool(self._observers)

    def authorize(
        self,
        operation: Operation,
        target: Target,
        listener: str,
        vm: HostState | None = None,
    ) -> str | None:
        """Ask every authorization plugin; ``None`` if none refuses, else who refused and why.

        A plugin that raises or returns something other than ``True``/``False``/``None``
        refuses (fail closed) and is logged with its name.
        """
        for label, caller in self._authorizers:
            try:
                answers = caller(operation=operation, target=target, listener=listener, vm=vm)
            except Exception as exc:
                log.error(
                    "authorization plugin %s failed (%s: %s); refusing",
                    self._describe(label),
                    type(exc).__name__,
                    exc,
                )
                log.debug("authorization plugin %s failed", label, exc_info=True)
                return f"{label} failed"
            for answer in answers:
                if answer is False:
                    return f"refused by {label}"
                if answer is not True:
                    log.error(
                        "authorization plugin %s returned %r; refusing",
                        self._describe(label),
                        answer,
                    )
                    return f"{label} gave no valid answer"
        return None

    def request_finished(self, request: FinishedRequest) -> None:
        """Tell every observer; one that raises is logged by name, the others still run."""
        for label, caller in self._observers:
            try:
                caller(request=request)
            except Exception as exc:
                # one line per failure; the traceback only at -d 1 (an observer runs for
                # every request: a broken one must not flood the journal with tracebacks)
                log.error(
                    "request observer %s failed: %s: %s",
                    self._describe(label),
                    type(exc).__name__,
                    exc,
                )
                log.debug("request observer %s failed", label, exc_info=True)

    @property
    def has_drop_observers(self) -> bool:
        """Some plugin implements ``fence_virt_request_dropped``."""
        return bool(self._drop_observers)

    def _tell(self, callers: list[tuple[str, Any]], what: str, **kwargs: Any) -> None:
        """Call each observer; one that raises is logged by name (traceback at -d 1)."""
        for label, caller in callers:
            try:
                caller(**kwargs)
            except Exception as exc:
                log.error(
                    "%s %s failed: %s: %s", what, self._describe(label), type(exc).__name__, exc
                )
                log.debug("%s %s failed", what, label, exc_info=True)

    def request_dropped(self, drop: DroppedRequest) -> None:
        """Tell every drop observer; one that raises is logged by name, the others still run."""
        self._tell(self._drop_observers, "drop observer", drop=drop)

    def backend_state(self, backend: str, *, up: bool, reason: str) -> None:
        """Tell every plugin observing the backend's state."""
        self._tell(
            self._state_observers, "backend state observer", backend=backend, up=up, reason=reason
        )

    def daemon_started(self) -> None:
        """Tell every plugin that implements it that the daemon has started."""
        self._tell(self._starters, "daemon_started hook of")

    def daemon_stopped(self) -> None:
        """Tell every plugin that implements it that the daemon has stopped."""
        for label, caller in self._stoppers:
            try:
                caller()
            except Exception:
                log.exception("plugin %s failed after the daemon stopped", self._describe(label))

    # introspection ----------------------------------------------------------------------------

    def implemented_hooks(self) -> list[str]:
        """Names of the hooks the registered plugins implement, for ``--list-plugins``."""
        names: set[str] = set()
        for plugin in self._pm.get_plugins():
            names.update(caller.name for caller in self._pm.get_hookcallers(plugin) or [])
        return sorted(names)


def _lacking(value: object, protocol: type) -> str:
    """What ``value`` is and which of ``protocol``'s methods it lacks, for a one-line error."""
    wanted = [name for name in dir(protocol) if not name.startswith("_")]
    missing = [name for name in wanted if not callable(getattr(value, name, None))]
    what = "None" if value is None else f"a {type(value).__qualname__}"
    return f"{what} without {', '.join(missing)}" if missing else what
