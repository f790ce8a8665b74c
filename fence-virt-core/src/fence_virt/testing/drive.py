"""Plugging one plugin object in as the daemon does: an entry, a manager, the typed facade.

The contract suites call a plugin only through :class:`fence_virt.plugins.PluginHooks` over
:func:`fence_virt.plugins.build_plugin_manager` -- the same registration checks (required
hooks, misspelt hooks) and the same checks of what the hooks return as in ``fence_virtd``.
"""

from __future__ import annotations

import inspect
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fence_virt.config import ConfigSection, ConfigTree
from fence_virt.plugins import (
    PluginEntry,
    PluginHooks,
    PluginKind,
    build_plugin_manager,
    plugin_section,
)

__all__ = ["ContractWarning", "CoroutineRunner", "Plugged", "plug", "single_line"]

_T = TypeVar("_T")


class ContractWarning(UserWarning):
    """A contract check ran weaker than it could, because the harness gave less evidence."""


class CoroutineRunner(Protocol):
    """Runs a coroutine to completion and returns its result: :func:`asyncio.run`, or a loop
    of the harness's own (e.g. one on a thread inside a network namespace)."""

    def __call__(self, coro: Coroutine[Any, Any, _T], /) -> _T: ...


@dataclass(frozen=True)
class Plugged:
    """One plugin registered alone in a fresh plugin manager, with its configuration."""

    entry: PluginEntry
    hooks: PluginHooks
    config: ConfigTree
    #: the plugin's block, as the daemon hands it to every hook
    section: ConfigSection


def plug(kind: PluginKind, name: str, plugin: object, config: ConfigTree) -> Plugged:
    """Register ``plugin`` as the entry point ``name`` of ``kind`` would be.

    :param plugin: what the entry point names: a class (instantiated without arguments, as
        core does) or an object registered as it is.
    :raises fence_virt.errors.PluginError: as the daemon would: a required hook missing, a
        hook that does not exist, a class that cannot be instantiated.
    """
    entry = PluginEntry(
        kind=kind,
        name=name,
        target=_target(plugin),
        distribution="the harness of a contract test",
        version=None,
        obj=plugin,
    )
    hooks = PluginHooks(build_plugin_manager([entry]), [entry])
    section = plugin_section(config, kind, name)
    return Plugged(entry=entry, hooks=hooks, config=config, section=section)


def _target(plugin: object) -> str:
    """``module:attribute`` as an entry point would name ``plugin``."""
    if inspect.ismodule(plugin):
        return plugin.__name__
    owner = plugin if inspect.isclass(plugin) else type(plugin)
    return f"{owner.__module__}:{owner.__qualname__}"


def single_line(text: object, what: str) -> str:
    """``text`` if it is a non-empty one-line string; AssertionError naming ``what`` else."""
    assert isinstance(text, str), f"{what} is {text!r}, not a str"
    assert text.strip(), f"{what} is empty"
    assert "\n" not in text, f"{what} spans several lines: {text!r}"
    return text
