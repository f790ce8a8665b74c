"""Install test plugin distributions into a throw-away directory (not the dev venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["install_broken_plugins", "repo_root", "uv_binary"]


def repo_root() -> Path:
    """The monorepo checkout this editable install comes from."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "fence-virt-core").is_dir() and (parent / "tests").is_dir():
            return parent
    raise RuntimeError(f"{here} is not inside the fence-virt monorepo")


def uv_binary() -> str:
    """The uv that scripts/bootstrap installed (or one on PATH)."""
    candidate = repo_root() / ".tools" / "bin" / "uv"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found: run scripts/bootstrap")
    return found


def install_broken_plugins(target: Path) -> Path:
    """Install tests/plugins/fence-virt-brokenplugin into ``target``; returns ``target``.

    Put ``target`` on ``sys.path`` / ``PYTHONPATH`` to make its entry points visible.
    """
    source = repo_root() / "tests" / "plugins" / "fence-virt-brokenplugin"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [
            uv_binary(),
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--python",
            sys.executable,
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return target
