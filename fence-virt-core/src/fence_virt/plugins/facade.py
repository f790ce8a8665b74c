"""The typed facade over ``pm.hook``: the only code in fence-virt that calls a hook.

Each method turns a plugin's answer into a checked value, so a plugin that returns garbage
fails loudly with its name instead of leaking a wrong answer onto the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pluggy

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.errors import PluginError
from fence_virt.plugins.discovery import PluginEntry, PluginKind
from fence_virt.protocol import HostState, Operation, Response
from fence_virt.types import Availability, Listener, Target

__all__ = ["PluginHooks"]

_OPERATION_HOOKS = {
    Operation.NULL: "fence_virt_backend_null",
    Operation.OFF: "fence_virt_backend_off",
    Operation.ON: "fence_virt_backend_on",
    Operation.REBOOT: "fence_virt_backend_reboot",
    Operation.STATUS: "fence_virt_backend_status",
}


class PluginHooks:
    """Typed calls into the plugins registered in one plugin manager."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        *,
        listener: PluginEntry | None = None,
        backend: PluginEntry | None = None,
    ) -> None:
        self._pm = pm
        self._entries = {PluginKind.LISTENER: listener, PluginKind.BACKEND: backend}

    def _fail(self, kind: PluginKind, message: str) -> PluginError:
        entry = self._entries[kind]
        if entry is None:
            return PluginError(message, plugin=f"(no {kind})")
        return PluginError(
            message, plugin=f"{kind.group}:{entry.name}", distribution=entry.distribution
        )

    def _availability(self, kind: PluginKind, value: Any, hook: str) -> Availability:
        if not isinstance(value, Availability):
            raise self._fail(kind, f"{hook} returned {value!r}, expected Availability")
        return value

    # listener ---------------------------------------------------------------------------------

    def listener_check(self, section: ConfigNode | None, config: ConfigTree) -> Availability:
        value = self._pm.hook.fence_virt_listener_check(section=section, config=config)
        return self._availability(PluginKind.LISTENER, value, "fence_virt_listener_check")

    def listener_create(self, section: ConfigNode | None, config: ConfigTree) -> Listener:
        value = self._pm.hook.fence_virt_listener_create(section=section, config=config)
        if not isinstance(value, Listener):
            raise self._fail(
                PluginKind.LISTENER,
                f"fence_virt_listener_create returned {value!r}, expected a Listener",
            )
        return value

    # backend ----------------------------------------------------------------------------------

    def backend_check(self, section: ConfigNode | None, config: ConfigTree) -> Availability:
        value = self._pm.hook.fence_virt_backend_check(section=section, config=config)
        return self._availability(PluginKind.BACKEND, value, "fence_virt_backend_check")

    def backend_start(self, section: ConfigNode | None, config: ConfigTree) -> None:
        if self._pm.hook.fence_virt_backend_start(section=section, config=config) is None:
            raise self._fail(PluginKind.BACKEND, "fence_virt_backend_start returned None")

    def backend_stop(self) -> None:
        self._pm.hook.fence_virt_backend_stop()

    def backend_operation(self, operation: Operation, target: Target) -> Response:
        """Run one VM operation (not devstatus/hostlist) and return a valid response code."""
        hook_name = _OPERATION_HOOKS.get(operation)
        if hook_name is None:
            raise self._fail(PluginKind.BACKEND, f"operation {operation!r} is not a VM operation")
        value = getattr(self._pm.hook, hook_name)(target=target)
        return self._response(value, hook_name)

    def backend_devstatus(self) -> Response:
        value = self._pm.hook.fence_virt_backend_devstatus()
        return self._response(value, "fence_virt_backend_devstatus")

    def backend_hostlist(self, requester: str) -> Sequence[HostState]:
        value = self._pm.hook.fence_virt_backend_hostlist(requester=requester)
        if not isinstance(value, Sequence) or not all(isinstance(v, HostState) for v in value):
            raise self._fail(
                PluginKind.BACKEND,
                f"fence_virt_backend_hostlist returned {value!r}, expected HostStates",
            )
        return value

    def _response(self, value: Any, hook: str) -> Response:
        try:
            return Response(value)
        except ValueError:
            raise self._fail(
                PluginKind.BACKEND, f"{hook} returned {value!r}, expected a Response code"
            ) from None

    # introspection ----------------------------------------------------------------------------

    def implemented_hooks(self) -> list[str]:
        """Names of the hooks the registered plugins implement, for ``--list-plugins``."""
        names: set[str] = set()
        for plugin in self._pm.get_plugins():
            names.update(caller.name for caller in self._pm.get_hookcallers(plugin) or [])
        return sorted(names)
