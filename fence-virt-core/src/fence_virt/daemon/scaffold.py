"""``fence_virtd --new-plugin KIND NAME``: write a new plugin distribution's skeleton.

The skeleton is a complete, installable distribution that passes its own contract tests as
generated: ``pyproject.toml`` with the entry point, ``src/<package>/plugin.py`` (a backend
over a placeholder in-memory hypervisor, or a listener serving signed requests on a UNIX
socket through the listener toolkit), a README with its config block and
``tests/test_contract.py`` running the :mod:`fence_virt.testing` contract suite.

Templates are files under ``fence_virt/daemon/templates/`` (``common/`` and one folder per
kind), rendered with the standard library's :class:`string.Template`: they only substitute
names (``${name}``, ``${package}``, ``${cls}`` ...), so a template engine with logic would
add a dependency to every host that runs the daemon for nothing (copier/cookiecutter would
add a second tool to install before the first plugin, and the skeleton must follow core's
version, which shipping it inside core guarantees).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from fence_virt.errors import UserError

__all__ = ["KINDS", "Skeleton", "new_plugin"]

#: plugin kind -> its entry-point group
KINDS = {"backend": "fence_virt.backends", "listener": "fence_virt.listeners"}
#: an entry-point name usable as a fence_virt.conf block name and in a Python package name
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
#: output path (``PKG`` is the package folder) -> template under templates/ (KIND: the kind)
_FILES = {
    "pyproject.toml": "common/pyproject.toml.tmpl",
    "README.md": "KIND/README.md.tmpl",
    "src/PKG/__init__.py": "common/__init__.py.tmpl",
    "src/PKG/plugin.py": "KIND/plugin.py.tmpl",
    "tests/test_contract.py": "KIND/test_contract.py.tmpl",
}


@dataclass(frozen=True)
class Skeleton:
    """The names one skeleton is rendered with."""

    kind: str
    name: str
    description: str

    @property
    def dist(self) -> str:
        """The distribution name: ``fence-virt-backend-my-cloud``."""
        return f"fence-virt-{self.kind}-{self.name.replace('_', '-')}"

    @property
    def package(self) -> str:
        """The import package: ``fence_virt_backend_my_cloud``."""
        return self.dist.replace("-", "_")

    def values(self) -> dict[str, str]:
        """What the templates' ``${...}`` placeholders stand for."""
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "dist": self.dist,
            "package": self.package,
            "group": KINDS[self.kind],
            "cls": "".join(part.capitalize() for part in self.name.split("_")),
        }


def new_plugin(kind: str, name: str, into: Path, description: str | None = None) -> Path:
    """Write the skeleton of a ``kind`` plugin called ``name`` into a new folder in ``into``.

    :param kind: ``"backend"`` or ``"listener"``.
    :param name: the entry-point name, also the block name in ``fence_virt.conf``: lower-case
        letters, digits and ``_``, starting with a letter, at most 40 characters.
    :returns: the new folder, ``into/fence-virt-<kind>-<name>``.
    :raises UserError: an unknown kind, a bad name, or the folder exists already (nothing
        is overwritten).
    """
    if kind not in KINDS:
        raise UserError(f"unknown plugin kind {kind!r}: choose {' or '.join(KINDS)}")
    if not _NAME.match(name):
        raise UserError(
            f"plugin name {name!r}: use lower-case letters, digits and _, starting with a letter"
        )
    skeleton = Skeleton(kind, name, description or f"the {name} {kind} (describe it here).")
    target = into / skeleton.dist
    if target.exists():
        raise UserError(f"{target} exists already: choose another name or folder")
    templates = files("fence_virt.daemon") / "templates"
    values = skeleton.values()
    for output, source in _FILES.items():
        path = target / output.replace("PKG", skeleton.package)
        _render(templates / source.replace("KIND", kind), path, values)
    (target / "src" / skeleton.package / "py.typed").touch()
    return target


def _render(template: Traversable, path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Template(template.read_text()).substitute(values))
