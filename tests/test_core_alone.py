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


def test_automatic_selection_in_a_clean_environment(tmp_path: Path) -> None:
    """Only core and the test plugins installed: without names in the config the daemon picks
    the plugins that say they can run, logs why, and refuses when none can."""
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

    refused = tmp_path / "refused.conf"
    refused.write_text(
        f'listeners {{ memory {{ socket = "{tmp_path}/s"; }} }}\n'
        'backends { memory { unusable = "the test says no"; } }\n'
    )
    result = subprocess.run(
        [fence_virtd, "-F", "-f", str(refused), "-p", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no installed backend can run here: backend memory: the test says no" in result.stderr

    usable = tmp_path / "usable.conf"
    usable.write_text(f'listeners {{ memory {{ socket = "{tmp_path}/s"; }} }}\n')
    daemon = Daemon(
        [fence_virtd, "-F", "-f", str(usable), "-p", str(tmp_path / "p")], tmp_path / "log"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
    finally:
        assert daemon.stop() == 0
    log = daemon.log()
    assert (
        "listener: memory from fence-virt-testplugins 0.0.1 "
        f"(picked automatically: socket {tmp_path}/s)" in log
    )
    assert (
        "backend: memory from fence-virt-testplugins 0.0.1 (picked automatically: 2 in-memory VMs)"
        in log
    )
