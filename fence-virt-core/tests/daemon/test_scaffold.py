"""``fence_virtd --new-plugin``: what it writes, what it refuses, and that what it writes is
lint- and type-clean under the project's own ruff and mypy settings. That the skeletons
install with pip and pass their contract tests: tests/test_third_party.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from fence_virt.daemon.cli import main
from fence_virt.daemon.scaffold import new_plugin
from fence_virt.errors import UserError
from fence_virt_testinfra.plugins import repo_root

BIN = Path(sys.executable).parent


def test_backend_skeleton_files_and_entry_point(tmp_path: Path) -> None:
    folder = new_plugin("backend", "my_cloud", tmp_path, "Fences VMs of My Cloud.")
    assert folder == tmp_path / "fence-virt-backend-my-cloud"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/fence_virt_backend_my_cloud/__init__.py",
        "src/fence_virt_backend_my_cloud/plugin.py",
        "src/fence_virt_backend_my_cloud/py.typed",
        "tests/test_contract.py",
    ]
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == "fence-virt-backend-my-cloud"
    assert project["entry-points"] == {
        "fence_virt.backends": {"my_cloud": "fence_virt_backend_my_cloud.plugin:MyCloudPlugin"}
    }
    readme = (folder / "README.md").read_text()
    assert 'backend = "my_cloud";' in readme
    assert "    my_cloud {\n" in readme
    assert (
        "class TestMyCloudBackendContract(BackendContract):"
        in (folder / "tests/test_contract.py").read_text()
    )
    assert (
        '"""Fences VMs of My Cloud."""'
        in (folder / "src/fence_virt_backend_my_cloud/plugin.py").read_text()
    )


def test_listener_skeleton_through_the_cli(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["--new-plugin", "listener", "pipe", "--into", str(tmp_path)])
    assert done.exit_code == 0, done.output
    folder = tmp_path / "fence-virt-listener-pipe"
    assert f"wrote {folder}" in done.output
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["entry-points"] == {
        "fence_virt.listeners": {"pipe": "fence_virt_listener_pipe.plugin:PipePlugin"}
    }
    assert (
        "class TestPipeListenerContract(ListenerContract, WrongKeyContract):"
        in (folder / "tests/test_contract.py").read_text()
    )


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("frontend", "x", "unknown plugin kind 'frontend': choose backend or listener"),
        ("backend", "My-Cloud", "plugin name 'My-Cloud': use lower-case letters, digits and _"),
        ("backend", "1cloud", "plugin name '1cloud'"),
        ("listener", "", "plugin name ''"),
    ],
)
def test_bad_kind_or_name_is_refused(tmp_path: Path, kind: str, name: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        new_plugin(kind, name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    mine = tmp_path / "fence-virt-backend-mine"
    mine.mkdir()
    (mine / "plugin.py").write_text("# my work\n")
    done = CliRunner().invoke(main, ["--new-plugin", "backend", "mine", "--into", str(tmp_path)])
    assert done.exit_code == 1
    assert f"{mine} exists already" in done.output
    assert (mine / "plugin.py").read_text() == "# my work\n"


def test_skeletons_are_ruff_and_mypy_clean(tmp_path: Path) -> None:
    backend = new_plugin("backend", "my_cloud", tmp_path)
    listener = new_plugin("listener", "pipe", tmp_path)
    settings = str(repo_root() / "pyproject.toml")
    for tool in ("ruff", "mypy"):
        assert shutil.which(str(BIN / tool)), f"{tool} is a dev dependency"
    for argv in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [str(BIN / "ruff"), *argv, "--config", settings, str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    typed = subprocess.run(
        [
            str(BIN / "mypy"),
            "--config-file",
            settings,
            "--no-incremental",
            str(backend / "src"),
            str(listener / "src"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo_root(),
    )
    assert typed.returncode == 0, typed.stdout + typed.stderr
