"""``fence_virtd --list-plugins``: what is installed, whether it loads, whether it can run here.

A plugin that cannot be imported, or that the daemon would refuse to register (a hook that
does not exist, a required hook missing), is BROKEN and makes the command exit 1. So is an
entry-point group that looks like ours but is not one of the three (a misspelt
``fence_virt.backend``): its plugins would otherwise never be seen.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import asdict, dataclass

from fence_virt.config import ConfigTree
from fence_virt.config.sources import CONFIG_SOURCE_GROUP
from fence_virt.daemon.selection import check_entry, hooks_for, rank
from fence_virt.errors import FenceVirtError, PluginError
from fence_virt.plugins import PluginEntry, PluginKind, discover

__all__ = ["PluginRow", "collect_rows", "render_json", "render_table"]


@dataclass(frozen=True)
class PluginRow:
    kind: str
    name: str
    distribution: str | None
    version: str | None
    target: str
    description: str
    loads: bool
    usable: bool
    #: why it cannot load, or why it can / cannot run here
    reason: str
    #: the hooks it implements
    hooks: tuple[str, ...] = ()


def _row(entry: PluginEntry, config: ConfigTree) -> PluginRow:
    usable, reason = False, entry.error or ""
    loads = entry.loaded
    hooks: tuple[str, ...] = ()
    if loads:
        try:
            facade = hooks_for(entry)
        except PluginError as exc:
            loads, reason = False, str(exc)
    if loads:
        try:
            hooks = tuple(facade.implemented_hooks())
            availability = check_entry(entry, config, facade)
            usable, reason = availability.usable, availability.reason
        except FenceVirtError as exc:
            reason = f"check failed: {exc}"
        except Exception as exc:  # noqa: BLE001 -- a listing shows every plugin's failure
            reason = f"check raised {type(exc).__name__}: {exc}"
    return PluginRow(
        kind=entry.kind.value,
        name=entry.name,
        distribution=entry.distribution,
        version=entry.version,
        target=entry.target,
        description=entry.description if entry.loaded else "",
        loads=loads,
        usable=usable,
        reason=reason,
        hooks=hooks,
    )


def _stray_groups() -> list[PluginRow]:
    """A row per entry point in a group that looks like ours but is none of the three plugin
    groups nor the group of configuration sources (``--config-source``)."""
    ours = {kind.group for kind in PluginKind} | {CONFIG_SOURCE_GROUP}
    rows = []
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group in ours or not ep.group.casefold().startswith(("fence_virt", "fence-virt")):
                continue
            rows.append(_stray_row(ep, dist, ours))
    return rows


def _stray_row(
    ep: importlib.metadata.EntryPoint, dist: importlib.metadata.Distribution, ours: set[str]
) -> PluginRow:
    return PluginRow(
        kind="unknown",
        name=ep.name,
        distribution=dist.metadata["Name"],
        version=dist.version,
        target=ep.value,
        description="",
        loads=False,
        usable=False,
        reason=f"entry-point group {ep.group!r} is not one fence_virtd reads "
        f"({', '.join(sorted(ours))}): the plugin is never used",
    )


def collect_rows(config: ConfigTree) -> list[PluginRow]:
    rows = [_row(e, config) for kind in PluginKind for e in rank(discover(kind), kind)]
    return rows + _stray_groups()


def render_json(rows: list[PluginRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def _status(row: PluginRow) -> str:
    if not row.loads:
        return "BROKEN"
    if row.kind == PluginKind.EXTENSION.value:
        return "enabled" if row.usable else "not enabled"
    return "usable" if row.usable else "unusable"


def render_table(rows: list[PluginRow]) -> str:
    if not rows:
        return (
            "No listener or backend plugins are installed.\n"
            "fence_virtd needs one of each, e.g.: pip install fence-virt-listener-multicast "
            "fence-virt-backend-libvirt"
        )
    header = ("KIND", "NAME", "DISTRIBUTION", "VERSION", "STATUS", "DESCRIPTION")
    cells = [
        (r.kind, r.name, r.distribution or "?", r.version or "?", _status(r), r.description)
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header) - 1)]
    lines = []
    for row, cell in zip([None, *rows], [header, *cells], strict=True):
        lines.append(
            "  ".join(str(v).ljust(w) for v, w in zip(cell, widths, strict=False)) + "  " + cell[-1]
        )
        if row is not None and row.reason:
            lines.append(f"    {row.reason}")
    missing = {k.value for k in (PluginKind.LISTENER, PluginKind.BACKEND)} - {r.kind for r in rows}
    lines.extend(f"(no {kind} plugin is installed)" for kind in sorted(missing))
    return "\n".join(line.rstrip() for line in lines)
