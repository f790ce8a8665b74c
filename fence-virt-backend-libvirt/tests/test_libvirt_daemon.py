"""The backend inside a real ``fence_virtd -F``: discovered through its entry point, chosen
by ``backend = "libvirt"``, fed by the in-memory test listener (text lines on a UNIX
socket), fencing libvirt's test driver ``test:///default``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fence_virt.testing.memory import ask
from fence_virt_testinfra.ours import FENCE_VIRTD
from fence_virt_testinfra.processes import Daemon

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "fence_virt.conf"
    path.write_text(
        f"""
fence_virtd {{ listener = "memory"; backend = "libvirt"; }}
listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}
backends {{ libvirt {{ uri = "test:///default"; }} }}
"""
    )
    path.chmod(0o600)
    return path


def test_list_plugins_shows_the_libvirt_backend_usable(tmp_path):
    result = subprocess.run(
        [FENCE_VIRTD, "--list-plugins", "--json", "-f", str(write_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    libvirt_row = rows[("backend", "libvirt")]
    assert libvirt_row["distribution"] == "fence-virt-backend-libvirt"
    assert libvirt_row["usable"]
    assert libvirt_row["reason"] == "connects to test:///default"


def test_fence_virtd_fences_the_test_driver(tmp_path):
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-f", str(write_config(tmp_path)), "-p", str(tmp_path / "fvd.pid")],
        tmp_path / "fvd.log",
    )
    try:
        daemon.wait_for_log("fence_virtd started")
        sock = tmp_path / "fv.sock"
        assert ask(sock, "list") == [f"test {TEST_UUID} 1"]
        assert ask(
            sock,
            "status test",
            "off test",
            "status test",
            "reboot test",
            "status test",
            "on test",
            "reboot test",
            "status test",
            f"status {TEST_UUID}",
            "status nosuch",
            "off nosuch",
            "null test",
            "monitor",
        ) == ["0", "0", "2", "0", "2", "0", "0", "0", "0", "1", "1", "1", "0"]
        assert ask(sock, "off test", "list") == ["0", f"test {TEST_UUID} 5"]
    finally:
        status = daemon.stop()
    log = daemon.log()
    assert status == 0, log
    assert "test:///default is libvirt's test driver: it fences nothing real" in log
    assert "destroying VM test (6695eb01" in log
    assert "status nosuch: no such VM on test:///default" in log


def _config_for(tmp_path: Path, uri: str) -> Path:
    path = tmp_path / "wait.conf"
    path.write_text(
        'fence_virtd { listener = "memory"; backend = "libvirt"; }\n'
        f'listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}\n'
        f'backends {{ libvirt {{ uri = "{uri}"; }} }}\n'
    )
    path.chmod(0o600)
    return path


def test_daemon_refuses_to_start_without_its_hypervisor(tmp_path, private_libvirtd):
    private_libvirtd.stop()
    config = _config_for(tmp_path, private_libvirtd.test_uri)
    result = subprocess.run(
        [FENCE_VIRTD, "-F", "-f", str(config), "-p", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fence_virtd: backend libvirt failed to start: ")
    assert "cannot connect to test+unix:///default" in last
    assert last.endswith("(fence_virtd -w retries until it can)")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "fv.sock").exists()


def test_wait_flag_retries_until_the_hypervisor_is_back(tmp_path, private_libvirtd):
    """-w: the daemon keeps retrying the backend every 5 s and serves once libvirtd is up."""
    private_libvirtd.stop()
    config = _config_for(tmp_path, private_libvirtd.test_uri)
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-w", "-f", str(config), "-p", str(tmp_path / "p")], tmp_path / "log"
    )
    try:
        daemon.wait_for_log("retrying in 5 s", timeout=20)
        assert not (tmp_path / "fv.sock").exists()  # not serving while it cannot fence
        private_libvirtd.start()
        daemon.wait_for_log("fence_virtd started", timeout=30)
        assert ask(tmp_path / "fv.sock", "status test") == ["0"]
    finally:
        assert daemon.stop() == 0
