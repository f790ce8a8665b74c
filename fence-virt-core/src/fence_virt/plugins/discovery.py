"""Find installed plugins through entry points (stevedore) and load them, loudly.

Nothing here runs at import time. :func:`discover` loads every plugin of a kind and keeps
load failures as data (for ``--list-plugins``); :func:`load_named` loads the one plugin a
daemon asked for and raises :class:`~fence_virt.errors.PluginError` -- naming the entry
point and its distribution -- when it cannot. Plugins are never skipped silently.

stevedore lists and imports the entry points and reports each import failure through its
``on_load_failure_callback``; the distribution that ships an entry point (name and version,
for messages and listings) comes from :mod:`importlib.metadata`, because stevedore's
entry-point cache does not keep it. Discovery reads what is installed when the process
starts; a plugin installed later is seen by the next ``fence_virtd``.

stevedore keeps its entry-point lists in a disk cache (``~/.cache/python-entrypoints``)
keyed on file modification times packed as 32-bit floats -- 128-second steps today -- so an
entry point added to an already installed distribution within about two minutes of the
cache being written is missing from its list. Every entry point :mod:`importlib.metadata`
sees is therefore listed; one stevedore did not see is reported as an error saying so,
never skipped.
"""

from __future__ import annotations

import enum
import importlib.metadata
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stevedore import DriverManager, ExtensionManager
from stevedore.exception import MultipleMatches, NoMatches

from fence_virt.errors import PluginError

__all__ = [
    "BACKEND_GROUP",
    "EXTENSION_GROUP",
    "LISTENER_GROUP",
    "PluginEntry",
    "PluginKind",
    "discover",
    "load_named",
]

#: entry-point group of listener plugins
LISTENER_GROUP = "fence_virt.listeners"
#: entry-point group of backend plugins
BACKEND_GROUP = "fence_virt.backends"
#: entry-point group of extensions (observers, authorization)
EXTENSION_GROUP = "fence_virt.extensions"


class PluginKind(enum.StrEnum):
    """The three kinds of plugin; the value is also the config word (``listener = "..."``)."""

    LISTENER = "listener"
    BACKEND = "backend"
    EXTENSION = "extension"

    @property
    def group(self) -> str:
        """The entry-point group plugins of this kind register under."""
        return _GROUPS[self]

    @property
    def section(self) -> str:
        """The top-level config block holding this kind's sections: ``listeners`` etc."""
        return f"{self.value}s"


_GROUPS = {
    PluginKind.LISTENER: LISTENER_GROUP,
    PluginKind.BACKEND: BACKEND_GROUP,
    PluginKind.EXTENSION: EXTENSION_GROUP,
}


@dataclass(frozen=True)
class PluginEntry:
    """One installed plugin entry point, loaded or with the error that stopped it."""

    kind: PluginKind
    name: str
    #: ``module:attribute`` the entry point names
    target: str
    distribution: str | None
    version: str | None
    #: the loaded object (class or module), ``None`` when loading failed
    obj: Any = None
    #: why loading failed, one line; ``None`` when it loaded
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None

    @property
    def test_only(self) -> bool:
        """A plugin of core's test kit (:mod:`fence_virt.testing`): never picked automatically."""
        module = self.target.partition(":")[0]
        return module == "fence_virt.testing" or module.startswith("fence_virt.testing.")

    @property
    def label(self) -> str:
        """``group:name``, how messages name the plugin (``fence_virt.backends:libvirt``)."""
        return f"{self.kind.group}:{self.name}"

    @property
    def description(self) -> str:
        """First line of the plugin object's docstring, else the distribution's summary."""
        doc = inspect.getdoc(self.obj) if self.obj is not None else None
        if doc:
            return doc.splitlines()[0]
        return _distribution_summary(self.distribution) or ""

    def failure(self, message: str) -> PluginError:
        """A :class:`PluginError` about this plugin, naming it and its distribution."""
        return PluginError(message, plugin=self.label, distribution=self.distribution)

    def instantiate(self) -> object:
        """The object to register with pluggy: an instance if the entry point names a class."""
        if self.obj is None:
            raise self.failure(self.error or "not loaded")
        if inspect.isclass(self.obj):
            try:
                return self.obj()
            except Exception as exc:
                raise self.failure(
                    f"cannot instantiate {self.target}: {type(exc).__name__}: {exc}"
                ) from exc
        return self.obj


def _distribution_summary(distribution: str | None) -> str | None:
    if distribution is None:
        return None
    try:
        summary: str | None = importlib.metadata.metadata(distribution)["Summary"]
    except (importlib.metadata.PackageNotFoundError, KeyError):
        return None
    return summary


def _owners(group: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(entry-point name, value) -> (distribution name, version), for one group."""
    owners: dict[tuple[str, str], tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=group):
        if ep.dist is not None:
            owners.setdefault((ep.name, ep.value), (ep.dist.metadata["Name"], ep.dist.version))
    return owners


class _Failures:
    """stevedore's ``on_load_failure_callback``: keeps one line per entry point that failed."""

    def __init__(self) -> None:
        self.by_name: dict[str, str] = {}

    def __call__(self, _manager: object, entrypoint: Any, exc: BaseException) -> None:
        self.by_name[entrypoint.name] = (
            f"cannot load {entrypoint.value}: {type(exc).__name__}: {exc}"
        )


#: why an installed entry point is missing from stevedore's list (see the module docstring)
_STALE = (
    "installed, but stevedore's entry-point cache does not list it yet: delete "
    "~/.cache/python-entrypoints (or wait two minutes) and start again"
)


#: an entry point stevedore's (stale) cache lists but that is no longer installed as such
_GONE = (
    "stevedore's entry-point cache lists this target, which is no longer installed: delete "
    "~/.cache/python-entrypoints (or wait two minutes) and start again"
)


def _entries(
    kind: PluginKind,
    seen: Sequence[Any],
    loaded: dict[str, Any],
    failures: _Failures,
    *,
    only: str | None = None,
) -> list[PluginEntry]:
    """One entry per installed entry point (``only``: of that exact name), sorted by name."""
    owners = _owners(kind.group)
    by_stevedore = {(ep.name, ep.value) for ep in seen}
    points = sorted(set(owners) | by_stevedore)
    entries = []
    for name, value in points:
        if only is not None and name != only:
            continue
        dist, version = owners.get((name, value), (None, None))
        error = failures.by_name.get(name)
        if error is None and (name, value) not in by_stevedore:
            error = _STALE
        elif error is None and (name, value) not in owners:
            error = _GONE
        elif error is None and name not in loaded:
            error = f"entry point {value} was not loaded by stevedore"
        entries.append(
            PluginEntry(
                kind=kind,
                name=name,
                target=value,
                distribution=dist,
                version=version,
                obj=loaded.get(name) if error is None else None,
                error=error,
            )
        )
    return entries


def discover(kind: PluginKind) -> list[PluginEntry]:
    """Load every installed plugin of ``kind``, sorted by name; failures are data, not raised."""
    failures = _Failures()
    manager: ExtensionManager[Any] = ExtensionManager(
        namespace=kind.group, invoke_on_load=False, on_load_failure_callback=failures
    )
    loaded = {ext.name: ext.plugin for ext in manager.extensions}
    return _entries(kind, manager.list_entry_points(), loaded, failures)


def load_named(kind: PluginKind, name: str) -> PluginEntry:
    """Load the plugin ``name`` of ``kind`` (case-insensitive, as in C) or raise PluginError.

    :raises fence_virt.errors.PluginError: no such plugin (the message lists what is
        installed), several distributions claim the name, or it fails to import.
    """
    entry_points = list(importlib.metadata.entry_points(group=kind.group))
    installed = sorted({ep.name for ep in entry_points})
    wanted = _resolve_name(kind, name, installed)
    failures = _Failures()
    try:
        manager: DriverManager[Any] = DriverManager(
            namespace=kind.group,
            name=wanted,
            invoke_on_load=False,
            on_load_failure_callback=failures,
        )
    except MultipleMatches:
        claims = _owners(kind.group).items()
        owners = sorted({owner for (ep_name, _), (owner, _) in claims if ep_name == wanted})
        raise PluginError(
            f"several distributions claim this {kind} name ({', '.join(owners)})", plugin=name
        ) from None
    except NoMatches:  # failed to import (``failures`` says why), or a stale stevedore cache
        seen: list[Any] = []
        loaded: dict[str, Any] = {}
    else:
        seen = [ext.entry_point for ext in manager.extensions]
        loaded = {ext.name: ext.plugin for ext in manager.extensions}
    if wanted in failures.by_name:
        seen = [ep for ep in entry_points if ep.name == wanted]
    entries = _entries(kind, seen, loaded, failures, only=wanted)
    broken = [entry for entry in entries if entry.error is not None]
    if broken:
        raise broken[0].failure(broken[0].error or "")
    if len(entries) != 1:
        targets = ", ".join(entry.target for entry in entries)
        raise PluginError(f"several {kind} entry points of this name ({targets})", plugin=name)
    return entries[0]


def _resolve_name(kind: PluginKind, name: str, installed: Sequence[str]) -> str:
    """The installed entry-point name ``name`` means: exact first, else the one that matches
    case-insensitively (C compares plugin names that way).

    :raises fence_virt.errors.PluginError: none matches, or several differ only in case.
    """
    if name in installed:
        return name
    matches = [found for found in installed if found.casefold() == name.casefold()]
    if not matches:
        raise PluginError(
            f"no {kind} plugin of this name is installed (installed: "
            f"{', '.join(installed) or 'none'})",
            plugin=name,
        )
    if len(matches) > 1:
        raise PluginError(
            f"several {kind} plugins match this name but for case ({', '.join(matches)}): "
            "write the exact name",
            plugin=name,
        )
    return matches[0]
