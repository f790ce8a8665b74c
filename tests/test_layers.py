"""The layer rules cover every distribution: import-linter checks only the packages named in
``[tool.importlinter]``, so a new distribution left out of it would not be checked at all."""

from __future__ import annotations

import tomllib
from pathlib import Path

from fence_virt_testinfra.plugins import repo_root


def _pyproject() -> dict:
    return tomllib.loads((repo_root() / "pyproject.toml").read_text())


def _workspace_packages() -> dict[str, Path]:
    """package name -> distribution folder, for every workspace member with a src/ tree."""
    root = repo_root()
    found = {}
    for pattern in _pyproject()["tool"]["uv"]["workspace"]["members"]:
        for member in sorted(root.glob(pattern)):
            for package in (member / "src").glob("*/__init__.py"):
                found[package.parent.name] = member
    return found


def _contract(contract_id: str) -> dict:
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["id"] == contract_id)


def test_every_workspace_package_is_checked() -> None:
    packages = _workspace_packages()
    assert {"fence_virt", "fence_virt_libvirt", "fence_virt_testinfra"} <= set(packages)
    checked = set(_pyproject()["tool"]["importlinter"]["root_packages"])
    assert set(packages) <= checked, f"add to [tool.importlinter]: {set(packages) - checked}"


def test_every_plugin_and_library_is_in_the_plugin_contracts() -> None:
    packages = _workspace_packages()
    plugins = {
        p
        for p, folder in packages.items()
        if folder.name.startswith(
            (
                "fence-virt-listener-",
                "fence-virt-backend-",
                "fence-virt-config-",
                "fence-virt-metrics-",
            )
        )
    }
    libraries = {"fence_virt_libvirt"}
    assert plugins, "no plugin distribution found: the test would prove nothing"
    assert set(_contract("plugins-independent")["modules"]) == plugins
    assert set(_contract("public-api-only")["source_modules"]) == plugins | libraries
    assert set(_contract("core-alone")["forbidden_modules"]) >= plugins | libraries
    assert set(_contract("libraries-below-plugins")["forbidden_modules"]) == plugins
