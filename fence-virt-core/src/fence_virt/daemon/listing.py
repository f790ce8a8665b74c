"""``fence_virtd --list-plugins``: what is installed, whether it loads, whether it can run here."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from fence_virt.config import ConfigTree
from fence_virt.daemon.selection import check_entry, hooks_for, rank
from fence_virt.errors import FenceVirtError
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
    hooks: tuple[str, ...] = ()
    if entry.loaded:
        try:
            facade = hooks_for(entry)
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
        loads=entry.loaded,
        usable=usable,
        reason=reason,
        hooks=hooks,
    )


def collect_rows(config: ConfigTree) -> list[PluginRow]:
    return [_row(e, config) for kind in PluginKind for e in rank(discover(kind), kind)]


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
