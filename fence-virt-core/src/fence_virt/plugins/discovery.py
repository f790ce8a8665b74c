"""Find installed plugins through entry points (stevedore) and load them, loudly.

Nothing here runs at import time. :func:`discover` loads every plugin of a kind and keeps
load failures as data (for ``--list-plugins``); :func:`load_named` loads the plugins a daemon
will use and raises :class:`~fence_virt.errors.PluginError` -- naming the entry point and its
distribution -- on the first failure. Plugins are never skipped silently.
"""

from __future__ import annotations

import enum
import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Any

from stevedore import ExtensionManager, NamedExtensionManager

from fence_virt.errors import PluginError

__all__ = ["BACKEND_GROUP", "LISTENER_GROUP", "PluginEntry", "PluginKind", "discover", "load_named"]

#: entry-point group of listener plugins
LISTENER_GROUP = "fence_virt.listeners"
#: entry-point group of backend plugins
BACKEND_GROUP = "fence_virt.backends"


class PluginKind(enum.StrEnum):
    LISTENER = "listener"
    BACKEND = "backend"

    @property
    def group(self) -> str:
        return LISTENER_GROUP if self is PluginKind.LISTENER else BACKEND_GROUP


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
    def description(self) -> str:
        """First line of the plugin object's docstring, else the distribution's summary."""
        doc = inspect.getdoc(self.obj) if self.obj is not None else None
        if doc:
            return doc.splitlines()[0]
        return _distribution_summary(self.distribution) or ""

    def instantiate(self) -> object:
        """The object to register with pluggy: an instance if the entry point names a class."""
        if self.obj is None:
            raise PluginError(
                self.error or "not loaded", plugin=self.name, distribution=self.distribution
            )
        if inspect.isclass(self.obj):
            try:
                return self.obj()
            except Exception as exc:
                raise PluginError(
                    f"cannot instantiate {self.target}: {type(exc).__name__}: {exc}",
                    plugin=self.name,
                    distribution=self.distribution,
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


def _owners(group: str) -> dict[str, tuple[str, str]]:
    """Map entry-point name -> (distribution name, version) for one group."""
    owners: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                owners.setdefault(ep.name, (dist.metadata["Name"], dist.version))
    return owners


def _entries(kind: PluginKind, only: str | None = None) -> list[PluginEntry]:
    """Load the plugins of ``kind`` (only the one called ``only``, case-insensitively, if given)."""
    failures: dict[str, str] = {}

    def on_failure(_manager: object, entrypoint: Any, exc: BaseException) -> None:
        failures[entrypoint.name] = f"cannot load {entrypoint.value}: {type(exc).__name__}: {exc}"

    eps = sorted(importlib.metadata.entry_points(group=kind.group), key=lambda e: e.name)
    if only is not None:
        eps = [ep for ep in eps if ep.name.casefold() == only.casefold()]
    # stevedore memoises entry points per group for the life of the process; each discovery
    # must see what is installed now (tests install plugins while running)
    ExtensionManager.ENTRY_POINT_CACHE.pop(kind.group, None)
    manager: ExtensionManager[Any] = NamedExtensionManager(
        namespace=kind.group,
        names=[ep.name for ep in eps],
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
    )
    loaded = {ext.name: ext for ext in manager.extensions}
    owners = _owners(kind.group)
    entries = []
    for ep in eps:
        dist, version = owners.get(ep.name, (None, None))
        ext = loaded.get(ep.name)
        error = failures.get(ep.name)
        if ext is None and error is None:
            error = f"entry point {ep.value} was not loaded by stevedore"
        entries.append(
            PluginEntry(
                kind=kind,
                name=ep.name,
                target=ep.value,
                distribution=dist,
                version=version,
                obj=ext.plugin if ext is not None and error is None else None,
                error=error,
            )
        )
    return entries


def discover(kind: PluginKind) -> list[PluginEntry]:
    """Load every installed plugin of ``kind``; failures are returned, not raised."""
    return _entries(kind)


def load_named(kind: PluginKind, name: str) -> PluginEntry:
    """Load the plugin ``name`` of ``kind`` (case-insensitive, as in C) or raise PluginError."""
    matches = _entries(kind, only=name)
    if not matches:
        installed = ", ".join(
            sorted(ep.name for ep in importlib.metadata.entry_points(group=kind.group))
        )
        installed = installed or "none"
        raise PluginError(
            f"no {kind} plugin of this name is installed (installed: {installed})", plugin=name
        )
    if len(matches) > 1:
        dists = ", ".join(f"{m.name} from {m.distribution}" for m in matches)
        raise PluginError(f"several {kind} plugins claim this name: {dists}", plugin=name)
    entry = matches[0]
    if entry.error is not None:
        raise PluginError(
            entry.error, plugin=f"{kind.group}:{entry.name}", distribution=entry.distribution
        )
    return entry
