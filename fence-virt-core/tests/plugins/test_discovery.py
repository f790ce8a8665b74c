"""Discovery through real entry points: the test plugins installed in the dev environment,
and a broken distribution installed into a temporary directory for the test.

Discovery reads what is installed when a process starts (stevedore keeps the entry points
of a group for the life of the process), so the broken distribution is examined by a fresh
interpreter with it on ``PYTHONPATH``, as a new ``fence_virtd`` would see it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fence_virt.errors import PluginError
from fence_virt.plugins import PluginKind, discover, load_named
from fence_virt_testinfra.plugins import install_broken_plugins

_PROBE = """
import json, sys
from fence_virt.errors import PluginError
from fence_virt.plugins import PluginKind, discover, load_named
rows = [
    {"name": e.name, "loaded": e.loaded, "error": e.error, "distribution": e.distribution}
    for e in discover(PluginKind.BACKEND)
]
try:
    load_named(PluginKind.BACKEND, sys.argv[1])
    failure = None
except PluginError as exc:
    failure = {"message": str(exc), "exit_code": exc.exit_code}
print(json.dumps({"rows": rows, "failure": failure}))
"""


@pytest.fixture
def broken_on_path(tmp_path: Path) -> Path:
    return install_broken_plugins(tmp_path / "site")


def probe(site: Path, name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """discover() and load_named(name) in a fresh interpreter that sees ``site``."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(site)}
    output = subprocess.check_output([sys.executable, "-c", _PROBE, name], env=env, text=True)
    result: dict[str, Any] = json.loads(output)
    return result


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
    assert entry.target == "fence_virt.testing.memory:MemoryBackendPlugin"


def test_unknown_name_lists_installed_plugins() -> None:
    with pytest.raises(PluginError, match=r"'nosuch'.*installed: .*memory"):
        load_named(PluginKind.BACKEND, "nosuch")


def test_broken_plugins_are_reported_not_skipped(broken_on_path: Path) -> None:
    entries = {row["name"]: row for row in probe(broken_on_path, "memory")["rows"]}
    assert entries["memory"]["loaded"]
    raising, missing = entries["broken-import"], entries["broken-missing"]
    assert not raising["loaded"]
    assert "fails to import on purpose" in raising["error"]
    assert raising["distribution"] == "fence-virt-brokenplugin"
    assert not missing["loaded"]
    assert "does_not_exist" in missing["error"]


def test_loading_a_broken_plugin_by_name_names_it_and_its_distribution(
    broken_on_path: Path,
) -> None:
    failure = probe(broken_on_path, "broken-import")["failure"]
    assert failure is not None
    assert "fence_virt.backends:broken-import" in failure["message"]
    assert "fence-virt-brokenplugin" in failure["message"]
    assert "fails to import on purpose" in failure["message"]
    assert failure["exit_code"] == 1
    assert probe(broken_on_path, "memory")["failure"] is None


def test_an_entry_point_stevedores_cache_missed_is_reported(
    broken_on_path: Path, tmp_path: Path
) -> None:
    """stevedore's disk cache keys on modification times: an entry point added without
    changing them (as a reinstall within its 128-second float32 steps does) is missing from
    its list. Discovery must say so instead of skipping the plugin."""
    cache = tmp_path / "xdg-cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    assert "broken-new" not in {row["name"] for row in probe(broken_on_path, "memory", env)["rows"]}
    assert any(cache.rglob("*")), "stevedore wrote no cache: this test would prove nothing"
    [points] = broken_on_path.glob("fence_virt_brokenplugin-*.dist-info/entry_points.txt")
    before = points.stat()
    with points.open("a") as stream:
        stream.write("\n[fence_virt.backends]\nbroken-new = fence_virt_brokenplugin.raises:New\n")
    os.utime(points, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = probe(broken_on_path, "broken-new", env)
    rows = {row["name"]: row for row in result["rows"]}
    assert not rows["broken-new"]["loaded"]
    assert "stevedore's entry-point cache does not list it" in rows["broken-new"]["error"]
    assert "stevedore's entry-point cache does not list it" in result["failure"]["message"]


def _add_entry_points(site: Path, text: str) -> Path:
    [points] = site.glob("fence_virt_brokenplugin-*.dist-info/entry_points.txt")
    with points.open("a") as stream:
        stream.write(text)
    return points


def test_an_exact_name_wins_and_names_that_differ_only_in_case_are_refused(
    broken_on_path: Path, tmp_path: Path
) -> None:
    """Another distribution's ``Memory`` must not stand in for ``memory`` (C compares plugin
    names case-insensitively, so only an exact match may settle it)."""
    _add_entry_points(
        broken_on_path, "\n[fence_virt.backends]\nMemory = fence_virt_brokenplugin.raises:X\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert probe(broken_on_path, "memory", env)["failure"] is None
    failure = probe(broken_on_path, "MEMORY", env)["failure"]
    assert (
        "several backend plugins match this name but for case (Memory, memory)"
        in (failure["message"])
    )


def test_a_target_changed_behind_a_stale_cache_is_refused(
    broken_on_path: Path, tmp_path: Path
) -> None:
    """stevedore's stale cache still lists the old target: neither old nor new is loaded."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    points = _add_entry_points(
        broken_on_path,
        "\n[fence_virt.backends]\nmoving = fence_virt.testing.memory:MemoryBackendPlugin\n",
    )
    assert probe(broken_on_path, "moving", env)["failure"] is None  # and the cache is written
    before = points.stat()
    points.write_text(points.read_text().replace("memory:MemoryBackendPlugin", "memory:Moved"))
    os.utime(points, ns=(before.st_atime_ns, before.st_mtime_ns))
    failure = probe(broken_on_path, "moving", env)["failure"]
    assert failure is not None
    assert "stevedore's entry-point cache" in failure["message"]
