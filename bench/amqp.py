"""Benchmark: three hosts on the amqp backend (one RabbitMQ) against three on the cpg backend.

Run as root from the repository root::

    .venv/bin/python bench/amqp.py           # add --json FILE to keep the numbers

cpg: three real corosync nodes in network namespaces (fence_virt_testinfra.corosync), each
with our fence_virtd (tcp listener on its own 127.0.0.1:1229, cpg backend). amqp: one
Debian rabbitmq-server in a namespace (fence_virt_testinfra.rabbitmq) and three of our
fence_virtds beside it (tcp listeners on 127.0.0.1:1301-1303, amqp backend). No debug
logging; each host has its own libvirt test-driver file. The client is always the C
``fence_virt -T``.

* latency: ``status`` of a VM on host 3 asked at host 1 (the request crosses the group or
  the broker and host 3 answers), median of hyperfine runs;
* 64 concurrent: 64 clients at once, spread over the three hosts, each asking ``status`` of
  its own VM held by *another* host; wall time until all answered, and how many succeeded.

Ratios are amqp / cpg. Network safety: all traffic stays in the namespaces made here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchkit import hyperfine_median, print_ratio_row

from fence_virt_testinfra.amqp_hosts import AmqpHost
from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.corosync import corosync_cluster
from fence_virt_testinfra.cpg_hosts import Host, write_check
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import wait_until
from fence_virt_testinfra.rabbitmq import rabbitmq_broker

HOSTS = 3
#: VMs of the concurrency run: c01..c64, c{i} on host i % 3 + 1
CONCURRENT = 64

#: (namespace, agent argv builder) per host, host 1 first
Asker = tuple[NetNS, Callable[..., list[str]]]


def layout(concurrent: int) -> dict[int, tuple[str, ...]]:
    vms: dict[int, list[str]] = {1: ["vmA"], 2: ["vmB"], 3: ["vmC"]}
    for i in range(1, concurrent + 1):
        vms[i % HOSTS + 1].append(f"c{i:02d}")
    return {host: tuple(names) for host, names in vms.items()}


def latency(ns: NetNS, argv: list[str], runs: int, out: Path) -> float:
    """Median seconds of ``argv`` run in ``ns``."""
    return hyperfine_median(ns, " ".join(argv), runs=runs, out=out, timeout=600)


def concurrent(askers: list[Asker], count: int) -> tuple[float, int]:
    """Wall seconds for ``count`` simultaneous requests, and how many answered 0."""
    processes = []
    begin = time.perf_counter()
    for i in range(1, count + 1):
        holder = i % HOSTS  # 0-based index of the host holding c{i}
        ns, agent = askers[(holder + 1) % HOSTS]  # another host
        argv = ns.argv(*agent("C", "-o", "status", "-H", f"c{i:02d}"))
        processes.append(
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    codes = [p.wait(120) for p in processes]
    return time.perf_counter() - begin, sum(code == 0 for code in codes)


def run_both(askers: list[Asker], runs: int, out: Path) -> dict[str, float]:
    ns, agent = askers[0]
    done = subprocess.run(
        ns.argv(*agent("C", "-o", "status", "-H", "vmC")),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"status vmC at host 1 gave {done.returncode}: {done.stdout!r}")
    median = latency(ns, agent("C", "-o", "status", "-H", "vmC"), runs, out)
    wall, ok = concurrent(askers, CONCURRENT)
    return {"latency": median, "concurrent": wall, "succeeded": ok}


def measure_cpg(runs: int, work: Path, vms: dict[int, tuple[str, ...]]) -> dict[str, float]:
    key = write_key(work / "fence_xvm.key")
    check = write_check(work)
    with corosync_cluster(HOSTS, tag="bamc") as nodes:
        hosts = [Host(node, key, check, listener="tcp", debug=None) for node in nodes]
        try:
            for host in hosts:
                host.start_ours(*vms[host.nodeid])
            wait_until(
                lambda: len(hosts[0].node.group_members("fence-agents")) == HOSTS,
                30,
                "three daemons in the group",
            )
            time.sleep(1.0)
            return run_both([(h.node.ns, h.agent_argv) for h in hosts], runs, work / "cpg.json")
        finally:
            for host in hosts:
                host.stop()


def measure_amqp(runs: int, work: Path, vms: dict[int, tuple[str, ...]]) -> dict[str, float]:
    key = write_key(work / "fence_xvm-amqp.key")
    with rabbitmq_broker(tag="bamq") as broker:
        hosts = [AmqpHost(broker, n, work, key, "bench", debug=None) for n in (1, 2, 3)]
        try:
            for host in hosts:
                host.start(*vms[host.host_id])
            time.sleep(2.0)  # two refresh rounds: every host has heard every other
            askers = [(broker.ns, h.agent_argv) for h in hosts]
            return run_both(askers, runs, work / "amqp.json")
        finally:
            for host in hosts:
                host.stop()


def report(results: dict[str, dict[str, float]]) -> None:
    cpg, amqp = results["cpg"], results["amqp"]
    print("\n3 hosts, our fence_virtd, C fence_virt -T client (test driver)")
    print(f"{'measure':34} {'cpg':>11} {'amqp':>11} {'amqp/cpg':>9}")
    print_ratio_row("status of a VM on host 3, at host 1", cpg["latency"], amqp["latency"])
    print_ratio_row(
        f"{CONCURRENT} concurrent, spread over 3 hosts",
        cpg["concurrent"],
        amqp["concurrent"],
        digits=0,
    )
    print(f"{'  of which answered 0':34} {int(cpg['succeeded']):11d} {int(amqp['succeeded']):11d}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="hyperfine runs for the latency")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    vms = layout(CONCURRENT)
    with tempfile.TemporaryDirectory(prefix="fvt-bench-amqp-") as tmp:
        results = {
            "cpg": measure_cpg(args.runs, Path(tmp), vms),
            "amqp": measure_amqp(args.runs, Path(tmp), vms),
        }
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
