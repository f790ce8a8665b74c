"""fence_virtd under systemd: the notify protocol against a real datagram socket standing in
for systemd's (systemd is not PID 1 on the test machines, so ``systemd-run`` cannot be used),
and the shipped unit file checked by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.daemon.systemd import Notifier, unit_problem
from fence_virt_testinfra.ours import FENCE_VIRTD
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.tools import skip_unless_installed


def memory_config(tmp_path: Path) -> Path:
    path = tmp_path / "fence_virt.conf"
    path.write_text(
        f"""fence_virtd {{ listener = "memory"; backend = "memory"; }}
listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}
backends {{ memory {{ vm = "vm1"; }} }}
"""
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """The datagram socket systemd would listen on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(10)
        yield sock


def messages(sock: socket.socket, until: str, timeout: float = 10) -> list[dict[str, str]]:
    """Every message received until one holding the field ``until`` (included)."""
    found: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.splitlines())
        found.append(fields)
        if until in fields:
            return found
    raise AssertionError(f"no {until} within {timeout} s: {found}")


def start(tmp_path: Path, **env: str) -> Daemon:
    argv = [FENCE_VIRTD, "-F", "-f", str(memory_config(tmp_path)), "-p", str(tmp_path / "pid")]
    return Daemon(argv, tmp_path / "fvd.log", env={**os.environ, **env})


def test_ready_after_the_listener_is_bound_watchdog_pings_and_stopping(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    daemon = start(tmp_path, NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="200000")
    try:
        before = messages(notify_socket, "READY")
        # the listener's socket exists when systemd hears READY, not merely soon after
        assert (tmp_path / "fv.sock").exists()
        ready = before[-1]
        assert ready["MAINPID"] == str(daemon.pid)
        assert ready["STATUS"] == "serving 1 listener(s), backend memory"
        clock = time.monotonic()
        pings = [m for m in messages(notify_socket, "WATCHDOG") if m == {"WATCHDOG": "1"}]
        pings += [m for m in messages(notify_socket, "WATCHDOG") if m == {"WATCHDOG": "1"}]
        pings += [m for m in messages(notify_socket, "WATCHDOG") if m == {"WATCHDOG": "1"}]
        # three pings take two intervals of 0.1 s (half of WATCHDOG_USEC), give or take
        assert len(pings) == 3
        assert 0.1 < time.monotonic() - clock < 2
        daemon.process.send_signal(15)
        stopping = messages(notify_socket, "STOPPING")[-1]
        assert stopping == {"STOPPING": "1", "STATUS": "shutting down"}
        daemon.process.wait(10)  # a second SIGTERM during the shutdown would kill it
    finally:
        status = daemon.stop()
    assert status == 0, daemon.log()


def test_abstract_socket_and_no_watchdog_without_watchdog_usec(tmp_path: Path) -> None:
    name = f"fence-virt-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        daemon = start(tmp_path, NOTIFY_SOCKET="@" + name)
        try:
            ready = messages(sock, "READY")
            assert [list(m) for m in ready] == [["READY", "STATUS", "MAINPID"]]
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(4096)  # no WATCHDOG=1
        finally:
            assert daemon.stop() == 0, daemon.log()


def test_watchdog_is_for_the_pid_it_names() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    mine = Notifier.from_environment({**env, "WATCHDOG_PID": str(os.getpid())})
    assert mine is not None
    assert mine.watchdog_seconds == 15
    other = Notifier.from_environment({**env, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other is not None
    assert other.watchdog_seconds is None
    assert Notifier.from_environment({}) is None
    assert Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"}) is None


def test_a_notify_socket_nobody_listens_on_does_not_stop_the_daemon(tmp_path: Path) -> None:
    daemon = start(tmp_path, NOTIFY_SOCKET=str(tmp_path / "nobody.sock"))
    try:
        daemon.wait_for_log("fence_virtd started")
        daemon.wait_for_log("cannot notify systemd (READY=1)")
    finally:
        assert daemon.stop() == 0, daemon.log()


def test_the_shipped_unit_file_verifies(tmp_path: Path) -> None:
    skip_unless_installed("systemd-analyze")
    result = subprocess.run(
        [FENCE_VIRTD, "--systemd-unit"], capture_output=True, text=True, check=True, timeout=30
    )
    unit = result.stdout
    assert f"ExecStart={FENCE_VIRTD} -F -f /etc/fence_virt.conf\n" in unit
    assert "Type=notify\n" in unit
    assert "WatchdogSec=" in unit
    path = tmp_path / "fence_virtd.service"
    path.write_text(unit)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # unknown or misspelt directives are only warnings on stderr: none may appear
    assert (verify.returncode, verify.stderr) == (0, "")


def test_a_unit_for_a_fence_virtd_the_unit_would_hide_warns() -> None:
    """``ProtectHome=yes`` hides /root and /home: a unit whose ExecStart is there cannot start
    (status 203/EXEC under a real systemd: test_systemd_real.py). The unit is still printed,
    the warning goes to stderr."""
    result = subprocess.run(
        [FENCE_VIRTD, "--systemd-unit"], capture_output=True, text=True, check=True, timeout=30
    )
    hidden = unit_problem(FENCE_VIRTD) is not None
    assert ("ProtectHome=yes" in result.stderr) is hidden
    assert result.stdout.startswith("[Unit]") or "[Service]" in result.stdout
    for path, problem in (
        ("/root/venv/bin/fence_virtd", True),
        ("/home/admin/.local/bin/fence_virtd", True),
        ("/opt/fence-virt/bin/fence_virtd", False),
        ("/usr/local/bin/fence_virtd", False),
        ("/rootfs/bin/fence_virtd", False),
    ):
        assert (unit_problem(path) is not None) is problem, path


def test_waiting_for_the_backend_extends_the_start_timeout_and_is_not_ready(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    """``-w`` with a backend that cannot start: systemd hears why and is asked for more time
    at every retry (else its start timeout kills a daemon waiting as told), never READY."""
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        f"""fence_virtd {{ listener = "memory"; backend = "libvirt"; }}
listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}
backends {{ libvirt {{ uri = "test+unix:///default?socket={tmp_path}/no-libvirtd"; }} }}
"""
    )
    config.chmod(0o600)
    argv = [FENCE_VIRTD, "-F", "-w", "-f", str(config), "-p", str(tmp_path / "pid")]
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    daemon = Daemon(argv, tmp_path / "fvd.log", env=env)
    try:
        waiting = messages(notify_socket, "EXTEND_TIMEOUT_USEC")
        assert all("READY" not in message for message in waiting), waiting
        last = waiting[-1]
        assert last["STATUS"].startswith("waiting for backend libvirt: "), last
        # the retry interval (5 s) and 30 s for the attempt itself
        assert int(last["EXTEND_TIMEOUT_USEC"]) == 35_000_000
        assert not (tmp_path / "fv.sock").exists()  # no listener before the backend runs
    finally:
        status = daemon.stop()
    assert status == 0, daemon.log()
