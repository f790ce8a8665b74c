"""``scripts/install-agents`` leaves alone what is not its own (issue 21 C8): another
program under an agent's name in ``--sbindir`` (the C suite's ``/usr/sbin/fence_xvm``) and a
``--prefix`` that is not an environment it made. Both refusals come before any change. The
install itself runs in the Pacemaker tests (``tests/pacemaker/conftest.py``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fence_virt_testinfra.plugins import repo_root

SCRIPT = repo_root() / "scripts" / "install-agents"


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_another_program_under_an_agents_name_stays(tmp_path: Path) -> None:
    sbindir = tmp_path / "sbin"
    sbindir.mkdir()
    theirs = sbindir / "fence_xvm"
    theirs.write_text("#!/bin/sh\necho C\n")
    done = install("--prefix", str(tmp_path / "prefix"), "--sbindir", str(sbindir))
    assert done.returncode == 1
    assert done.stderr == (
        f"install-agents: {theirs} exists and is not ours (the C suite's?); use --replace\n"
    )
    assert theirs.read_text() == "#!/bin/sh\necho C\n"
    assert not (tmp_path / "prefix").exists()
    assert sorted(path.name for path in sbindir.iterdir()) == ["fence_xvm"]


def test_a_prefix_that_is_no_environment_of_ours_stays(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    prefix.mkdir()
    (prefix / "data").write_text("keep")
    done = install("--prefix", str(prefix), "--sbindir", str(tmp_path / "sbin"))
    assert done.returncode == 1
    assert "exists and is no environment of ours" in done.stderr
    assert (prefix / "data").read_text() == "keep"
    assert not (tmp_path / "sbin").exists()


def test_a_relative_prefix_is_refused(tmp_path: Path) -> None:
    done = install("--prefix", "opt/fence-virt", "--sbindir", str(tmp_path / "sbin"))
    assert (done.returncode, done.stderr) == (2, "install-agents: --prefix must be absolute\n")
