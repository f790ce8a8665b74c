"""fence-virt core: wire codec, plugin framework, fence_virtd daemon and guest agents.

A plugin needs only this import::

    from fence_virt import hookimpl, Availability, Backend, ConfigSection, Listener, Target

The names load lazily, so the guest agents (which import :mod:`fence_virt.protocol` only) do
not pay for pluggy at start-up: Pacemaker runs an agent for every monitor.
"""

from __future__ import annotations

# not typing.TYPE_CHECKING: importing typing adds 9-11 ms to every agent start (measured, with
# the command, in the fence_virt.agents docstring)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from fence_virt.config import ConfigSection
    from fence_virt.hookspecs import hookimpl
    from fence_virt.types import (
        Availability,
        Backend,
        CheckContext,
        Diagnosable,
        Dispatcher,
        DropKind,
        DroppedRequest,
        Finding,
        FinishedRequest,
        Listener,
        MaybeAwaitable,
        Silenceable,
        Target,
        WizardQuestion,
    )

__all__ = [
    "Availability",
    "Backend",
    "CheckContext",
    "ConfigSection",
    "Diagnosable",
    "Dispatcher",
    "DropKind",
    "DroppedRequest",
    "Finding",
    "FinishedRequest",
    "Listener",
    "MaybeAwaitable",
    "Silenceable",
    "Target",
    "WizardQuestion",
    "hookimpl",
]

_LAZY = {
    "hookimpl": "fence_virt.hookspecs",
    "ConfigSection": "fence_virt.config",
    "Availability": "fence_virt.types",
    "Backend": "fence_virt.types",
    "CheckContext": "fence_virt.types",
    "Diagnosable": "fence_virt.types",
    "Dispatcher": "fence_virt.types",
    "DropKind": "fence_virt.types",
    "DroppedRequest": "fence_virt.types",
    "Finding": "fence_virt.types",
    "FinishedRequest": "fence_virt.types",
    "Listener": "fence_virt.types",
    "MaybeAwaitable": "fence_virt.types",
    "Silenceable": "fence_virt.types",
    "Target": "fence_virt.types",
    "WizardQuestion": "fence_virt.types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fence_virt' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - with warnings ~0.3 ms that the agents do not need

    return getattr(importlib.import_module(module), name)
