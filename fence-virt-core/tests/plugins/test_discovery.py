"""Discovery through real entry points: the test plugins installed in the dev environment,
and a broken distribution installed into a temporary directory for the test."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.errors import PluginError
from fence_virt.plugins import PluginKind, discover, load_named
from fence_virt_testinfra.plugins import install_broken_plugins


@pytest.fixture
def broken_on_path(tmp_path: Path) -> Iterator[Path]:
    target = install_broken_plugins(tmp_path / "site")
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        importlib.invalidate_caches()
        for name in [m for m in sys.modules if m.startswith("fence_virt_brokenplugin")]:
            del sys.modules[name]


def test_memory_plugins_are_found_with_their_distribution() -> None:
    listeners = {e.name: e for e in discover(PluginKind.LISTENER)}
    backends = {e.name: e for e in discover(PluginKind.BACKEND)}
    for entry in (listeners["memory"], backends["memory"]):
        assert entry.loaded, entry.error
        assert entry.distribution == "fence-virt-testplugins"
        assert entry.version == "0.0.1"
        assert entry.description.startswith("In-memory test")


def test_load_named_is_case_insensitive() -> None:
    entry = load_named(PluginKind.BACKEND, "MeMoRy")
    assert entry.name == "memory"
    assert entry.target == "fence_virt_testplugins.backend:MemoryBackendPlugin"


def test_unknown_name_lists_installed_plugins() -> None:
    with pytest.raises(PluginError, match=r"'nosuch'.*installed: .*memory"):
        load_named(PluginKind.BACKEND, "nosuch")


def test_broken_plugins_are_reported_not_skipped(broken_on_path: Path) -> None:
    del broken_on_path
    entries = {e.name: e for e in discover(PluginKind.BACKEND)}
    assert entries["memory"].loaded
    raising, missing = entries["broken-import"], entries["broken-missing"]
    assert not raising.loaded
    assert "fails to import on purpose" in (raising.error or "")
    assert raising.distribution == "fence-virt-brokenplugin"
    assert not missing.loaded
    assert "does_not_exist" in (missing.error or "")


def test_loading_a_broken_plugin_by_name_names_it_and_its_distribution(
    broken_on_path: Path,
) -> None:
    del broken_on_path
    with pytest.raises(PluginError) as info:
        load_named(PluginKind.BACKEND, "broken-import")
    message = str(info.value)
    assert "fence_virt.backends:broken-import" in message
    assert "fence-virt-brokenplugin" in message
    assert info.value.exit_code == 1
