"""fence_virtd as a process: --list-plugins, serving through the in-memory test plugins,
clean shutdown, background start-up reporting, and loud failure on broken plugins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from fence_virt.testing.memory import ask
from fence_virt_testinfra.ours import FENCE_VIRTD
from fence_virt_testinfra.plugins import install_broken_plugins
from fence_virt_testinfra.processes import Daemon, wait_until


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def memory_config(tmp_path: Path, extra: str = "") -> Path:
    return write_config(
        tmp_path / "fence_virt.conf",
        f"""
fence_virtd {{
    listener = "memory";
    backend = "memory";
{extra}
}}
listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
""",
    )


def fence_virtd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FENCE_VIRTD, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_list_plugins_json_shows_test_plugins(tmp_path: Path) -> None:
    result = fence_virtd("--list-plugins", "--json", "-f", str(memory_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    listener = rows[("listener", "memory")]
    assert listener["distribution"] == "fence-virt-testplugins"
    assert listener["loads"]
    assert listener["usable"]
    assert listener["reason"] == f"socket {tmp_path}/fv.sock"
    assert rows[("backend", "memory")]["reason"] == "2 in-memory VMs"
    assert rows[("listener", "memory")]["hooks"] == [
        "fence_virt_listener_check",
        "fence_virt_listener_create",
    ]
    assert rows[("backend", "memory")]["hooks"] == [
        "fence_virt_backend_check",
        "fence_virt_backend_create",
    ]
    recorder = rows[("extension", "recorder")]
    assert recorder["loads"]
    assert not recorder["usable"]
    assert recorder["reason"] == "not enabled (add a block extensions/recorder { })"
    assert recorder["hooks"] == [
        "fence_virt_extension_configure",
        "fence_virt_request_dropped",
        "fence_virt_request_finished",
    ]


def test_list_plugins_table_says_why_a_plugin_cannot_run(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.conf", 'backends { memory { unusable = "no hypervisor here"; } }\n'
    )
    result = fence_virtd("--list-plugins", "-f", str(config))
    assert result.returncode == 0, result.stderr
    assert "no socket configured in listeners/memory" in result.stdout
    assert "no hypervisor here" in result.stdout
    assert "unusable" in result.stdout


def test_daemon_serves_and_stops_cleanly(tmp_path: Path) -> None:
    config, pid_file = memory_config(tmp_path), tmp_path / "fvd.pid"
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-f", str(config), "-p", str(pid_file)], tmp_path / "fvd.log"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
        assert pid_file.read_text().strip() == str(daemon.pid)
        sock = tmp_path / "fv.sock"
        assert ask(
            sock, "status vm1", "off vm1", "status vm1", "status nosuch", "on vm1", "status vm1"
        ) == [
            "0",
            "0",
            "2",
            "1",
            "0",
            "0",
        ]
        listing = ask(sock, "list")[0].splitlines()
        assert [row.split()[0] for row in listing] == ["vm1", "vm2"]
    finally:
        status = daemon.stop()
    assert status == 0, daemon.log()
    assert not pid_file.exists()
    assert not (tmp_path / "fv.sock").exists()
    log = daemon.log()
    assert "off vm1 (requester memory, seqno 0, listener memory): success" in log
    assert "fence_virtd shutting down" in log


def test_second_daemon_with_same_pid_file_is_refused(tmp_path: Path) -> None:
    config, pid_file = memory_config(tmp_path), tmp_path / "fvd.pid"
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-f", str(config), "-p", str(pid_file)], tmp_path / "fvd.log"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
        second = fence_virtd("-F", "-f", str(config), "-p", str(pid_file))
        assert second.returncode == 1
        assert f"already running (pid {daemon.pid}" in second.stderr
    finally:
        assert daemon.stop() == 0


def test_background_start_reports_ready_then_runs(tmp_path: Path) -> None:
    config, pid_file = memory_config(tmp_path), tmp_path / "fvd.pid"
    result = fence_virtd("-f", str(config), "-p", str(pid_file))
    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    try:
        assert ask(tmp_path / "fv.sock", "status vm2") == ["0"]
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_file.exists(), 10, "the daemon to remove its pid file")


def test_background_start_failure_is_reported_by_the_parent(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.conf",
        'fence_virtd { listener = "memory"; backend = "memory"; }\n'
        f'listeners {{ memory {{ socket = "{tmp_path}/missing-dir/fv.sock"; }} }}\n',
    )
    result = fence_virtd("-f", str(config), "-p", str(tmp_path / "fvd.pid"))
    assert result.returncode == 1
    assert "listener memory (memory listener on" in result.stderr
    assert "missing-dir" in result.stderr


def test_config_error_names_file_and_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.conf", 'fence_virtd {\n    listener = "memory"\n}\n')
    result = fence_virtd("-F", "-f", str(config), "-p", str(tmp_path / "p"))
    assert result.returncode == 255  # C: "Failed to parse", exit 255
    assert result.stderr.startswith(
        f"fence_virtd: {config}:2: expected ';' after value of 'listener'"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_insecure_config_is_tightened(tmp_path: Path) -> None:
    config = memory_config(tmp_path)
    config.chmod(0o644)
    result = fence_virtd("--list-plugins", "-f", str(config))
    assert result.returncode == 0
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-f", str(config), "-p", str(tmp_path / "p")], tmp_path / "fvd.log"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
    finally:
        daemon.stop()
    assert config.stat().st_mode & 0o777 == 0o600
    assert "insecure permissions" in daemon.log()


def test_unusable_named_plugin_missing_section_fails_loudly(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.conf", 'fence_virtd { listener = "memory"; backend = "memory"; }\n'
    )
    result = fence_virtd("-F", "-f", str(config), "-p", str(tmp_path / "p"))
    assert result.returncode == 255  # a configuration error: C's status, no restart mends it
    assert f"{config}: listeners/memory: needs socket" in result.stderr


@pytest.fixture
def broken_env(tmp_path: Path) -> dict[str, str]:
    target = install_broken_plugins(tmp_path / "site")
    return {**os.environ, "PYTHONPATH": str(target)}


def test_broken_plugin_by_name_stops_the_daemon(tmp_path: Path, broken_env: dict[str, str]) -> None:
    config = write_config(
        tmp_path / "c.conf",
        'fence_virtd { listener = "memory"; backend = "broken-import"; }\n'
        f'listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}\n',
    )
    result = fence_virtd("-F", "-f", str(config), "-p", str(tmp_path / "p"), env=broken_env)
    assert result.returncode == 1
    assert "broken-import" in result.stderr
    assert "fence-virt-brokenplugin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "fv.sock").exists()


def test_broken_plugin_stops_automatic_selection(
    tmp_path: Path, broken_env: dict[str, str]
) -> None:
    config = write_config(
        tmp_path / "c.conf", f'listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}\n'
    )
    result = fence_virtd("-F", "-f", str(config), "-p", str(tmp_path / "p"), env=broken_env)
    assert result.returncode == 1
    assert "fence-virt-brokenplugin" in result.stderr


def test_list_plugins_shows_broken_plugins_and_fails(
    tmp_path: Path, broken_env: dict[str, str]
) -> None:
    result = fence_virtd(
        "--list-plugins", "--json", "-f", str(memory_config(tmp_path)), env=broken_env
    )
    assert result.returncode == 1
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["broken-import"]["loads"] is False
    assert rows["broken-import"]["distribution"] == "fence-virt-brokenplugin"
    assert "fails to import on purpose" in rows["broken-import"]["reason"]
    assert rows["memory"]["loads"] is True


def test_debug_above_three_dumps_the_configuration(tmp_path: Path) -> None:
    config = memory_config(tmp_path)
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-d", "4", "-f", str(config), "-p", str(tmp_path / "p")], tmp_path / "l"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
    finally:
        daemon.stop()
    log = daemon.log()
    assert f"configuration from {config}:" in log
    assert '\tvm = "vm2";' in log


def test_list_plugins_reports_plugins_the_daemon_would_refuse(
    tmp_path: Path, broken_env: dict[str, str]
) -> None:
    """A misspelt hook and a misspelt entry-point group are BROKEN, not 'not enabled'."""
    result = fence_virtd(
        "--list-plugins", "--json", "-f", str(memory_config(tmp_path)), env=broken_env
    )
    assert result.returncode == 1
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    typo = rows[("extension", "typo-hook")]
    assert typo["loads"] is False
    assert "'fence_virt_authorise' (did you mean 'fence_virt_authorize'?)" in typo["reason"]
    assert "fence-virt-brokenplugin" in typo["reason"]
    stray = rows[("unknown", "misgrouped")]
    assert stray["distribution"] == "fence-virt-brokenplugin"
    assert "entry-point group 'fence_virt.backend' is not one fence_virtd reads" in stray["reason"]
    table = fence_virtd("--list-plugins", "-f", str(memory_config(tmp_path)), env=broken_env)
    assert table.returncode == 1
    assert "typo-hook" in table.stdout
    assert "BROKEN" in table.stdout


def test_enabled_extension_with_a_misspelt_hook_stops_the_daemon(
    tmp_path: Path, broken_env: dict[str, str]
) -> None:
    config = memory_config(tmp_path)
    config.write_text(config.read_text() + "extensions { typo-hook { } }\n")
    result = fence_virtd("-F", "-f", str(config), "-p", str(tmp_path / "p"), env=broken_env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "fence_virtd: plugin 'fence_virt.extensions:typo-hook' (fence-virt-brokenplugin): "
        "implements hooks that do not exist: 'fence_virt_authorise' "
        "(did you mean 'fence_virt_authorize'?)"
    )
    assert "Traceback" not in result.stderr


def test_stray_signals_are_logged_and_ignored(tmp_path: Path) -> None:
    """C blocks them; a default action would end all fencing without a word."""
    config, pid_file = memory_config(tmp_path), tmp_path / "fvd.pid"
    daemon = Daemon(
        [FENCE_VIRTD, "-F", "-f", str(config), "-p", str(pid_file)], tmp_path / "fvd.log"
    )
    try:
        daemon.wait_for_log("fence_virtd started")
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
            os.kill(daemon.pid, sig)
            daemon.wait_for_log(f"received {sig.name}: ignored")
        assert ask(tmp_path / "fv.sock", "status vm1") == ["0"]
    finally:
        status = daemon.stop()
    assert status == 0, daemon.log()
    assert not pid_file.exists()


@pytest.mark.timeout(30)
def test_a_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fence_virt.conf"
    os.mkfifo(fifo, 0o600)
    for args in (("-F", "-p", str(tmp_path / "p")), ("--list-plugins",)):
        result = fence_virtd(*args, "-f", str(fifo))
        assert result.returncode == 1
        assert result.stderr == f"fence_virtd: config file {fifo} is not a regular file\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--json"], "--json needs --list-plugins"),
        (["--into", "/tmp"], "--into needs --new-plugin"),
        (["--answer", "fence_virtd/backend=libvirt"], "--answer needs -c"),
        (["--add-listeners"], "--add-listeners needs -c"),
        (["-c", "--check"], "-c and --check exclude each other: give one"),
        (["--check", "--list-plugins"], "--check and --list-plugins exclude each other"),
        (["-d", "-1"], "-1 is not a debug level (0 or more)"),
    ],
)
def test_options_out_of_place_are_refused_before_anything_runs(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    """An option without its mode, ignored, would start the daemon instead (on the default
    configuration file, whose mode it would change)."""
    config = memory_config(tmp_path)
    config.chmod(0o644)
    done = fence_virtd(*argv, "-f", str(config), "-p", str(tmp_path / "pid"))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Usage: fence_virtd [OPTIONS]" in done.stderr
    assert config.stat().st_mode & 0o777 == 0o644  # nothing read it
    assert not (tmp_path / "pid").exists()
