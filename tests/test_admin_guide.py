"""The administrator's guide, followed as a new user would (docs/admin/install.md, "From a
fresh Debian 12 to a fenced test domain"): a stdlib venv, ``pip install`` of exactly the
repository folders the guide names (core, the multicast listener, the libvirt library and
backend), the configuration
text taken from the guide itself (only the key's path moved out of /etc), ``fence_virtd -F``
and our ``fence_xvm`` from that venv -- both inside a network namespace holding only ``lo``,
as the guide advises -- and the test domain really off at the end."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.plugins import repo_root
from fence_virt_testinfra.processes import Daemon

GUIDE = repo_root() / "docs" / "admin" / "install.md"

pytestmark = pytest.mark.netns


def guide_config() -> str:
    """The fence_virt.conf the guide writes (its ``<<'CONF'`` block), unindented."""
    found = re.search(r"<<'CONF'\n(.*?)\n\s*CONF\n", GUIDE.read_text(), re.DOTALL)
    assert found is not None, "the guide no longer writes /etc/fence_virt.conf"
    lines = found.group(1).splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def guide_pip_folders() -> list[str]:
    """The repository folders the guide's ``pip install`` names."""
    text = GUIDE.read_text()
    command = re.search(r"/opt/fence-virt/bin/pip install (.*?)\n\s*ln -s", text, re.DOTALL)
    assert command is not None, "the guide no longer pip-installs from the repository"
    return re.findall(r"/srv/fence-virt/([\w-]+)", command.group(1))


def test_fresh_venv_to_a_fenced_test_domain(tmp_path: Path, ns: NetNS, key_file: Path) -> None:
    folders = guide_pip_folders()
    assert folders == [
        "fence-virt-core",
        "fence-virt-listener-multicast",
        "fence-virt-libvirt",
        "fence-virt-backend-libvirt",
    ]
    venv = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", *(str(repo_root() / f) for f in folders)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    text = guide_config()
    assert '"/etc/cluster/fence_xvm.key"' in text
    config = tmp_path / "fence_virt.conf"
    config.write_text(text.replace("/etc/cluster/fence_xvm.key", str(key_file)))
    bin_dir = venv / "bin"
    argv = [str(bin_dir / "fence_virtd"), "-F", "-d", "1", "-f", str(config)]
    daemon = Daemon(ns.argv(*argv, "-p", str(tmp_path / "pid")), tmp_path / "log", env)
    try:
        daemon.wait_for_log("fence_virtd started", 60)

        def xvm(*args: str) -> subprocess.CompletedProcess[str]:
            agent = [str(bin_dir / "fence_xvm"), "-k", str(key_file), *args]
            return ns.run(*agent, check=False, timeout=60)

        listing = xvm("-o", "list")
        assert listing.returncode == 0, listing.stdout + listing.stderr
        assert [row.split()[::2] for row in listing.stdout.splitlines()] == [["test", "on"]]
        off = xvm("-o", "off", "-H", "test")
        assert off.returncode == 0, off.stdout + off.stderr
        status = xvm("-o", "status", "-H", "test")
        assert (status.returncode, status.stdout) == (2, "Status: OFF\n")
    finally:
        assert daemon.stop() == 0, daemon.log()
