"""The prometheus extension in a whole in-process daemon (the kit's memory listener and
backend, through their real entry points), scraped over loopback HTTP; and the counting rules
on real records."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fence_virt import DropKind, DroppedRequest, FinishedRequest, Target
from fence_virt.config import parse_text
from fence_virt.daemon.app import Daemon
from fence_virt.daemon.doctor import run_check
from fence_virt.errors import ConfigError
from fence_virt.protocol import Operation, Response
from fence_virt.testing.memory import ask
from fence_virt_metrics_prometheus import FenceMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp_path: Path, port: int) -> str:
    return f"""
fence_virtd {{ listener = "cluster-a"; backend = "memory"; }}
listeners {{ cluster-a {{ plugin = "memory"; socket = "{tmp_path}/a.sock"; }} }}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
extensions {{ prometheus {{ port = "{port}"; }} }}
"""


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return parse(text)


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def requests(samples: Samples, operation: str, result: str, listener: str) -> float:
    labels = {"operation": operation, "result": result, "listener": listener}
    return value(samples, "fence_virt_requests_total", **labels)


def test_a_daemon_serves_its_metrics_while_it_runs(tmp_path: Path) -> None:
    port = free_port()
    daemon = Daemon.from_config(parse_text(config(tmp_path, port), source="m.conf"))
    sock = tmp_path / "a.sock"

    async def main() -> Samples:
        async with daemon:
            answers = await asyncio.to_thread(
                ask, sock, "status vm1", "off vm1", "status vm1", "status nosuch", "monitor"
            )
            assert answers == ["0", "0", "2", "1", "0"]
            await asyncio.sleep(0)  # observers run right after the answers
            return await asyncio.to_thread(scrape, port)

    samples = asyncio.run(main())
    assert requests(samples, "status", "success", "cluster-a") == 1
    assert requests(samples, "status", "off", "cluster-a") == 1
    assert requests(samples, "status", "fail", "cluster-a") == 1
    assert requests(samples, "off", "success", "cluster-a") == 1
    duration = "fence_virt_request_duration_seconds_count"
    assert value(samples, duration, operation="status", listener="cluster-a") == 3
    assert value(samples, "fence_virt_backend_up", backend="memory") == 1
    # an unknown VM is a normal answer, not a backend error
    assert not [key for key in samples if key[0] == "fence_virt_backend_errors_total"]
    # the endpoint closes with the daemon
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def test_doctor_checks_the_port_and_leaves_nothing_bound(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "m.conf"
    path.write_text(config(tmp_path, port))
    path.chmod(0o600)
    report = run_check(str(path), explicit=True)
    assert report.problems == 0, report.render()
    lines = [line.finding.text for line in report.lines if line.subject == "extension prometheus"]
    assert lines[0].startswith("configured")
    assert lines[1] == f"metrics endpoint http://127.0.0.1:{port}/metrics can listen"
    with socket.socket() as after:  # the check closed what it bound (no endpoint is served)
        after.bind(("127.0.0.1", port))
    with socket.socket() as holder:  # the port is taken: one problem, naming it
        holder.bind(("127.0.0.1", port))
        holder.listen()
        report = run_check(str(path), explicit=True)
    problems = [line for line in report.lines if line.finding.is_problem]
    assert [line.subject for line in problems] == ["extension prometheus"], report.render()
    assert problems[0].finding.text == (
        f"cannot listen on 127.0.0.1:{port} for metrics: Address already in use"
    )
    assert "extensions/prometheus" in (problems[0].finding.fix or "")


def test_a_bad_address_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    text = config(tmp_path, 9230).replace('port = "9230";', 'address = "localhost";')
    with pytest.raises(ConfigError, match=r"m\.conf:5: .*'localhost' is not an IP address"):
        Daemon.from_config(parse_text(text, source="m.conf"))


def test_a_port_in_use_is_logged_and_fencing_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    daemon = Daemon.from_config(parse_text(config(tmp_path, port), source="m.conf"))

    async def main() -> list[str]:
        async with daemon:
            return await asyncio.to_thread(ask, tmp_path / "a.sock", "status vm2")

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert asyncio.run(main()) == ["0"]
    assert f"cannot serve metrics on 127.0.0.1:{port}" in caplog.text
    assert "daemon_started hook of fence_virt.extensions:prometheus" in caplog.text


def finished(
    response: Response, reason: str | None = None, op: Operation = Operation.OFF
) -> FinishedRequest:
    target = Target(domain="vm1", by_uuid=False, requester="198.51.100.11", seqno=1)
    return FinishedRequest(op, target, "multicast", response, time.time(), 0.2, reason)


def test_counting_rules() -> None:
    metrics = FenceMetrics()
    metrics.backend_state("libvirt", up=True)
    metrics.finished(finished(Response.FAIL, "BackendError: cannot connect"))
    metrics.finished(finished(Response.FAIL))  # unknown VM
    metrics.finished(finished(Response.PERM, "denied by the static map"))
    metrics.finished(finished(Response.FAIL, "libvirt down", Operation.DEVSTATUS))
    for kind in (DropKind.AUTHENTICATION, DropKind.AUTHENTICATION, DropKind.REPLAY):
        metrics.dropped_input(DroppedRequest("multicast", "198.51.100.11", kind, "x", time.time()))
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "fence_virt_backend_errors_total", operation="off") == 1
    assert value(samples, "fence_virt_backend_errors_total", operation="devstatus") == 1
    assert requests(samples, "off", "fail", "multicast") == 2
    assert requests(samples, "off", "perm", "multicast") == 1
    assert value(samples, "fence_virt_authentication_failures_total", listener="multicast") == 2
    dropped = "fence_virt_dropped_requests_total"
    assert value(samples, dropped, listener="multicast", kind="authentication") == 2
    assert value(samples, dropped, listener="multicast", kind="replay") == 1
    # a failed devstatus (the agents' monitor) marks the backend down
    assert value(samples, "fence_virt_backend_up", backend="libvirt") == 0
    assert (
        value(
            samples,
            "fence_virt_request_duration_seconds_bucket",
            operation="off",
            listener="multicast",
            le="0.25",
        )
        == 3
    )
