"""The metrics endpoint scraped over HTTP while the C ``fence_xvm`` fences through our daemon
(multicast listener, libvirt backend on the test driver), everything inside a network
namespace; a request signed with another key is counted as an authentication failure."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fence_virt_testinfra.c_suite import MulticastSetup, write_key, write_test_node
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import running_fence_virtd
from fence_virt_testinfra.processes import wait_until
from fence_virt_testinfra.setns import in_netns

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

PORT = 9230


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(ns: NetNS) -> Samples:
    """The endpoint's samples, fetched from inside ``ns`` (where the daemon listens)."""

    def fetch() -> str:
        url = f"http://127.0.0.1:{PORT}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return str(answer.read().decode())

    text = in_netns(ns, fetch)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_scrape_while_the_c_agent_fences(
    ns: NetNS, tmp_path: Path, fence_xvm: Callable[..., Any]
) -> None:
    key = write_key(tmp_path / "fence_xvm.key")
    setup = MulticastSetup(key_file=key, uri=write_test_node(tmp_path / "node.xml"))
    config = tmp_path / "fence_virt.conf"
    config.write_text(setup.config_text() + f'extensions {{ prometheus {{ port = "{PORT}"; }} }}\n')
    config.chmod(0o600)
    wrong = write_key(tmp_path / "other.key")
    with running_fence_virtd(ns, tmp_path / "daemon", config) as daemon:
        assert fence_xvm(ns, key, "-o", "status", "-H", "vm1").returncode == 0
        assert fence_xvm(ns, key, "-o", "off", "-H", "vm1").returncode == 0
        assert fence_xvm(ns, key, "-o", "status", "-H", "vm1").returncode == 2
        assert fence_xvm(ns, key, "-o", "monitor").returncode == 0
        assert fence_xvm(ns, wrong, "-t", "2", "-o", "off", "-H", "vm2").returncode != 0
        # observers run right after each answer: the scrape may come a moment early
        monitor = {"operation": "devstatus", "result": "success", "listener": "multicast"}
        wait_until(
            lambda: sample(scrape(ns), "fence_virt_requests_total", **monitor) == 1,
            10,
            "the monitor request in the metrics",
        )
        samples = scrape(ns)
        assert "metrics on http://127.0.0.1:9230/metrics" in daemon.log()

    def requests(operation: str, result: str) -> float:
        return sample(
            samples,
            "fence_virt_requests_total",
            operation=operation,
            result=result,
            listener="multicast",
        )

    assert requests("status", "success") == 1
    assert requests("status", "off") == 1
    assert requests("off", "success") == 1
    assert requests("off", "fail") == 0  # the wrongly keyed off never became a request
    count = "fence_virt_request_duration_seconds_count"
    assert sample(samples, count, operation="status", listener="multicast") == 2
    failures = sample(samples, "fence_virt_authentication_failures_total", listener="multicast")
    # fence_xvm sends its request once a second until its 2 s timeout
    assert failures >= 1
    dropped = "fence_virt_dropped_requests_total"
    assert sample(samples, dropped, listener="multicast", kind="authentication") == failures
    assert sample(samples, "fence_virt_backend_up", backend="libvirt") == 1
    assert sample(samples, "fence_virt_backend_errors_total", operation="off") == 0
