"""The documentation site and the man pages (docs/, Sphinx) build without a warning, the man
pages committed for the wheel (fence-virt-core/man/) are those a fresh build makes, and
``man -l`` renders each one cleanly. Generated reference text (config keys, agent options)
is checked against the code it comes from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fence_virt_testinfra.plugins import repo_root

DOCS = repo_root() / "docs"
COMMITTED_MAN = repo_root() / "fence-virt-core" / "man"
PAGES = ("fence_virtd.8", "fence_xvm.8", "fence_virt.8", "fence_virt.conf.5")
SPHINX = str(Path(sys.executable).parent / "sphinx-build")


def sphinx(builder: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPHINX, "-q", "-W", "--keep-going", "-E", "-b", builder, str(DOCS), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def man_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man")
    done = sphinx("man", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def without_generator_comments(text: str) -> list[str]:
    """The page without its ``.\\"`` comment lines (they name the docutils version)."""
    return [line for line in text.splitlines() if not line.startswith('.\\"')]


def render(page: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MAN_KEEP_FORMATTING"}
    env |= {"MANWIDTH": "80", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        ["man", "-l", str(page)], capture_output=True, text=True, check=False, env=env
    )


def test_site_builds_without_warnings(tmp_path: Path) -> None:
    done = sphinx("html", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = (tmp_path / "reference" / "hooks.html").read_text()
    # the hook reference comes from hookspecs.py's docstrings
    for hook in ("fence_virt_listener_create", "fence_virt_backend_check", "fence_virt_authorize"):
        assert f'id="fence_virt.hookspecs.{hook}"' in hooks, hook
    keys = (tmp_path / "reference" / "config-keys.html").read_text()
    assert "reboot_timeout" in keys
    assert "max_connections" in keys
    pages = {p.stem for p in (tmp_path / "differences").glob("*.html")}
    assert {"index", "unknown-vm", "keys-and-authentication"} <= pages


def test_committed_man_pages_match_a_fresh_build(man_build: Path) -> None:
    assert sorted(p.name for p in man_build.iterdir() if p.is_file()) == sorted(PAGES)
    for name in PAGES:
        fresh = without_generator_comments((man_build / name).read_text())
        committed = without_generator_comments((COMMITTED_MAN / name).read_text())
        assert committed == fresh, f"{name} is stale: run scripts/docs --update-man"


@pytest.mark.parametrize("name", PAGES)
def test_man_renders_each_page(man_build: Path, name: str) -> None:
    done = render(COMMITTED_MAN / name)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    title = name.rsplit(".", 1)[0].upper()
    assert done.stdout.startswith(f"{title}({name.rsplit('.', 1)[1]})"), done.stdout[:200]
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert f"\n{section}\n" in done.stdout, section


def test_generated_keys_and_options_follow_the_code(man_build: Path) -> None:
    conf = render(man_build / "fence_virt.conf.5").stdout
    assert "port -- integer, a number from 1 to 65535; default 1229" in conf
    assert "uri -- text (repeatable); default (required)" in conf
    assert "hash -- one of none, sha1, sha256, sha512; default sha256" in conf
    xvm = render(man_build / "fence_xvm.8").stdout
    assert "-k <file>, key_file=" in xvm
    assert "-T <address>" not in xvm, "fence_xvm's getopt string has no -T"
    virt = render(man_build / "fence_virt.8").stdout
    assert "-T <address>, ipaddr=" in virt
    daemon = render(man_build / "fence_virtd.8").stdout
    assert "--new-plugin <KIND NAME>" in daemon
    assert "--list-plugins" in daemon


def test_every_installed_plugin_block_is_documented() -> None:
    """A listener or backend distribution of this repository whose block the key reference
    lacks fails here (add it to CONFIG_BLOCKS in docs/_ext/fence_virt_docs.py)."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from fence_virt_docs import CONFIG_BLOCKS, key_rows
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from importlib.metadata import entry_points

    shipped = {
        f"{group.rsplit('.', 1)[1]}/{ep.name}"
        for group in ("fence_virt.listeners", "fence_virt.backends")
        for ep in entry_points(group=group)
        if ep.dist is not None and (repo_root() / ep.dist.name).is_dir()
    }
    assert "listeners/multicast" in shipped
    assert shipped <= set(CONFIG_BLOCKS), shipped - set(CONFIG_BLOCKS)
    for block in CONFIG_BLOCKS:
        assert all(meaning for _key, _kind, _default, meaning in key_rows(block)), block
