"""The test infrastructure itself: what it starts is gone afterwards, links really carry,
and no distribution of fence-virt imports it."""

from __future__ import annotations

import ast
import socket
import subprocess
from pathlib import Path

import pytest

from fence_virt_testinfra.netns import netns
from fence_virt_testinfra.plugins import repo_root
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.setns import in_netns
from fence_virt_testinfra.tools import skip_unless_netns
from fence_virt_testinfra.topology import GuestHost


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _fail_inside_a_namespace(log: Path, started: list[tuple[str, Daemon]]) -> None:
    with netns("self") as ns:
        started.append((ns.name, Daemon(ns.argv("sleep", "1000"), log)))
        assert ns.name in namespaces()
        raise RuntimeError("the test failed")


@pytest.mark.netns
def test_a_failing_test_leaves_no_namespace_and_no_process(tmp_path: Path) -> None:
    skip_unless_netns()
    started: list[tuple[str, Daemon]] = []
    with pytest.raises(RuntimeError, match="the test failed"):
        _fail_inside_a_namespace(tmp_path / "sleep.log", started)
    [(name, daemon)] = started
    assert daemon.process.wait(10) == -9
    assert name not in namespaces()


def test_stop_kills_a_daemon_that_ignores_sigterm(tmp_path: Path) -> None:
    script = "trap '' TERM; echo ready; while :; do sleep 1; done"
    daemon = Daemon(["sh", "-c", script], tmp_path / "stubborn.log")
    daemon.wait_for_log("ready")
    assert daemon.stop(timeout=0.5) == -9
    assert daemon.stop() == -9, "stop() may be called again"


def _datagram_crosses(pair: GuestHost, family: socket.AddressFamily, host_ip: str) -> bytes:
    receiver = in_netns(pair.host, lambda: socket.socket(family, socket.SOCK_DGRAM))
    sender = in_netns(pair.guest, lambda: socket.socket(family, socket.SOCK_DGRAM))
    with receiver, sender:
        receiver.bind((host_ip, 0))
        receiver.settimeout(5)
        sender.sendto(b"across the veth", receiver.getsockname()[:2])
        return receiver.recv(64)


@pytest.mark.netns
def test_guest_host_carries_ipv4_and_ipv6_at_once(guest_host: GuestHost) -> None:
    """Sockets made on a thread inside a namespace stay there: the datagram crosses the veth."""
    assert _datagram_crosses(guest_host, socket.AF_INET, guest_host.host_ip) == b"across the veth"
    assert _datagram_crosses(guest_host, socket.AF_INET6, guest_host.host_ip6) == b"across the veth"
    assert not guest_host.host.run("ip", "-6", "addr", "show", "tentative").stdout.strip()


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_no_distribution_imports_the_test_infrastructure() -> None:
    root = repo_root()
    sources = [
        path
        for src in (*root.glob("fence-virt-*/src"), root / "tests" / "plugins")
        for path in src.rglob("*.py")
    ]
    assert any(path.match("fence_virt/testing/*.py") for path in sources)
    offenders = [
        str(path.relative_to(root))
        for path in sources
        if any(name.split(".")[0] == "fence_virt_testinfra" for name in _imports(path))
    ]
    assert offenders == []


def test_missing_infrastructure_skips_by_hand_and_fails_under_scripts_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fence_virt_testinfra.tools import NO_SKIP_VARIABLE, unavailable

    monkeypatch.delenv(NO_SKIP_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed: x"):
        unavailable("not installed: x")
    monkeypatch.setenv(NO_SKIP_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"not installed: x \(scripts/test installs it"):
        unavailable("not installed: x")
    monkeypatch.delenv(NO_SKIP_VARIABLE)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"not installed: x \(scripts/test installs it"):
        unavailable("not installed: x")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed: x"):
        unavailable("not installed: x")
