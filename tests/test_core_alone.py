"""Installing fence-virt-core alone gives a working daemon CLI; a plugin distribution
installed later appears without any change to core (real venv, real entry points)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fence_virt_testinfra.plugins import repo_root, uv_binary
from fence_virt_testinfra.processes import Daemon


def uv(*args: str) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv_binary(), *args], check=True, env=env, capture_output=True, timeout=300)


def test_core_alone_then_a_plugin(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv("venv", "-q", "--python", "python3", str(venv))
    uv(
        "pip",
        "install",
        "-q",
        "--python",
        str(venv / "bin" / "python"),
        str(repo_root() / "fence-virt-core"),
    )
    fence_virtd = str(venv / "bin" / "fence_virtd")

    alone = subprocess.run(
        [fence_virtd, "--list-plugins", "--default-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert alone.returncode == 0, alone.stderr
    assert "No listener or backend plugins are installed." in alone.stdout
    assert (
        json.loads(
            subprocess.check_output([fence_virtd, "--list-plugins", "--json", "--default-config"])
        )
        == []
    )

    serve = subprocess.run(
        [fence_virtd, "-F", "--default-config", "-p", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert serve.returncode == 1
    assert "no listener plugin is installed" in serve.stderr
    no_libvirt = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import libvirt"], capture_output=True, check=False
    )
    assert no_libvirt.returncode != 0, "fence-virt-core alone pulled in libvirt-python"

    plugin = repo_root() / "tests" / "plugins" / "fence-virt-testplugins"
    uv("pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(plugin))
    rows = json.loads(
        subprocess.check_output([fence_virtd, "--list-plugins", "--json", "--default-config"])
    )
    assert {(r["kind"], r["name"], r["distribution"]) for r in rows} == {
        ("listener", "memory", "fence-virt-testplugins"),
        ("backend", "memory", "fence-virt-testplugins"),
        ("extension", "deny", "fence-virt-testplugins"),
        ("extension", "recorder", "fence-virt-testplugins"),
    }


def test_blocks_choose_plugins_and_test_plugins_are_never_picked(tmp_path: Path) -> None:
    """Only core and the test plugins installed: a config's one block names the plugin to
    use; without blocks nothing is picked, because the in-memory plugins fence nothing."""
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    uv("venv", "-q", "--python", "python3", str(venv))
    uv("pip", "install", "-q", "--python", python, str(repo_root() / "fence-virt-core"))
    uv(
        "pip",
        "install",
        "-q",
        "--python",
        python,
        str(repo_root() / "tests/plugins/fence-virt-testplugins"),
    )
    fence_virtd = str(venv / "bin" / "fence_virtd")

    def run(text: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "c.conf"
        config.write_text(text)
        return subprocess.run(
            [fence_virtd, "-F", "-f", str(config), "-p", str(tmp_path / "p")],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    nothing = run("# no blocks at all\n")
    assert nothing.returncode == 1
    assert "the test plugins installed (memory) are never picked automatically" in nothing.stderr
    two = run(
        f'listeners {{ memory {{ socket = "{tmp_path}/s"; }} }}\n'
        "backends {\n memory { }\n other { }\n}\n"
    )
    assert two.returncode == 255  # a configuration error (C: "Failed to determine backend")
    assert "c.conf:2: backends: several blocks (memory, other) and no backend line" in two.stderr

    usable = tmp_path / "usable.conf"
    usable.write_text(
        f'listeners {{ memory {{ socket = "{tmp_path}/s"; }} }}\nbackends {{ memory {{ }} }}\n'
    )
    daemon = Daemon(
        [fence_virtd, "-F", "-f", str(usable), "-p", str(tmp_path / "p")], tmp_path / "log"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
    finally:
        assert daemon.stop() == 0
    log = daemon.log()
    assert (
        f"listener: memory from fence-virt-testplugins 0.0.1 (chosen by its block at {usable}:1)"
        in log
    )
    assert (
        f"backend: memory from fence-virt-testplugins 0.0.1 (chosen by its block at {usable}:2)"
        in log
    )
