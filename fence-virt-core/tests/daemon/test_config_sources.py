"""``fence_virtd --config-source NAME``: the built-in ``conf`` source through its own entry
point, and sources that are missing or broken (tests/plugins/fence-virt-brokenplugin,
installed into a throw-away directory), each refused with one line naming it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fence_virt.config.sources import ConfigSource, FileSource
from fence_virt.daemon.config_sources import find_config_source, installed_config_sources
from fence_virt.daemon.settings import load_daemon_config
from fence_virt.errors import ConfigError, PluginError, UserError
from fence_virt_testinfra.plugins import install_broken_plugins

FENCE_VIRTD = str(Path(sys.executable).parent / "fence_virtd")


def fence_virtd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FENCE_VIRTD, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_conf_is_core_s_own_entry_point_and_reads_one_file(tmp_path: Path) -> None:
    assert {"conf", "dropin"} <= set(installed_config_sources())
    source = find_config_source("conf")
    assert isinstance(source, FileSource)
    assert isinstance(source, ConfigSource)
    conf = tmp_path / "c.conf"
    conf.write_text('backends {\n\tmemory { vm = "vm1"; }\n}\n')
    tree = load_daemon_config(str(conf), explicit=True, source=source)
    block = tree.node("backends/memory")
    assert block is not None
    assert (block.source, block.line) == (str(conf), 2)
    conf.write_text("backends {\n")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{conf}:")):
        load_daemon_config(str(conf), explicit=True, source=source)
    with pytest.raises(UserError, match="not a regular file"):
        source.load(str(tmp_path))


def test_an_unknown_source_is_refused_naming_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no config source 'nosuch' is installed \(installed: "):
        find_config_source("nosuch")
    done = fence_virtd("--config-source", "nosuch", "-F", "-p", str(tmp_path / "p"))
    assert done.returncode == 1
    assert done.stderr.startswith("fence_virtd: no config source 'nosuch' is installed")
    assert "conf" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken-source", "does not load: ImportError: fence-virt-brokenplugin"),
        ("not-a-source", "is not a config source (needs exists() and load())"),
    ],
)
def test_a_broken_source_names_its_entry_point_and_distribution(
    tmp_path: Path, name: str, message: str
) -> None:
    target = install_broken_plugins(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(target)}
    conf = tmp_path / "c.conf"
    conf.write_text("# empty\n")
    done = fence_virtd("--config-source", name, "-F", "-f", str(conf), "-p", "p", env=env)
    assert done.returncode == 1
    assert f"plugin '{name}' (fence-virt-brokenplugin): config source " in done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    listed = fence_virtd("--list-plugins", "--config-source", name, "-f", str(conf), env=env)
    assert listed.returncode == 1
    assert message in listed.stderr
    # a source is not a plugin row: the broken ones do not show up as stray entry points
    ok = fence_virtd("--list-plugins", "--json", "-f", str(conf), env=env)
    assert name not in ok.stdout


def test_a_broken_source_is_a_plugin_error_naming_it(tmp_path: Path) -> None:
    target = install_broken_plugins(tmp_path / "site")
    sys.path.insert(0, str(target))
    try:
        with pytest.raises(PluginError) as caught:
            find_config_source("not-a-source")
    finally:
        sys.path.remove(str(target))
    assert caught.value.plugin == "not-a-source"
    assert caught.value.distribution == "fence-virt-brokenplugin"
