"""Benchmark: three hosts on the cpg backend -- three C fence_virtds against three of ours.

Run as root from the repository root::

    .venv/bin/python bench/cpg.py            # add --json FILE to keep the numbers

Three real corosync nodes in network namespaces (198.51.100.1-3 on a bridge, a private
/run each, fence_virt_testinfra.corosync). Each node runs a fence_virtd with the tcp listener
on its own 127.0.0.1:1229 and the cpg backend on its own libvirt test-driver file; first
three C daemons (Debian's, restarted while they hit the start-up race of recipes §5d), then
three of ours (no debug logging). The client is always the C ``fence_virt -T``.

* latency: ``status`` of a VM on node 3 asked at node 1 (the request crosses the group and
  node 3 answers), median of hyperfine runs inside node 1's namespace;
* 64 concurrent: 64 clients at once, spread over the three nodes, each asking ``status`` of
  its own VM held by *another* node; wall time until all answered, and how many succeeded.

Ratios are ours / C (below 1: ours is faster). Network safety: all traffic stays in the
namespaces made here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import hyperfine_median, print_ratio_row

from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.corosync import corosync_cluster
from fence_virt_testinfra.cpg_hosts import Host, write_check
from fence_virt_testinfra.processes import wait_until

NODES = 3
#: VMs of the concurrency run: c01..c64, c{i} on node i % 3 + 1
CONCURRENT = 64


def layout(concurrent: int) -> dict[int, tuple[str, ...]]:
    vms: dict[int, list[str]] = {1: ["vmA"], 2: ["vmB"], 3: ["vmC"]}
    for i in range(1, concurrent + 1):
        vms[i % NODES + 1].append(f"c{i:02d}")
    return {node: tuple(names) for node, names in vms.items()}


def start(kind: str, hosts: list[Host], vms: dict[int, tuple[str, ...]]) -> None:
    for host in hosts:
        if kind == "C":
            host.start_c(*vms[host.nodeid])
        else:
            host.start_ours(*vms[host.nodeid])
    wait_until(
        lambda: len(hosts[0].node.group_members("fence-agents")) == NODES,
        30,
        "three daemons in the group",
    )
    # every node learns every VM: C publishes on membership changes, ours too
    time.sleep(1.0)


def latency(host: Host, runs: int, out: Path) -> float:
    """Median seconds of ``status vmC`` (node 3's VM) asked at ``host``."""
    command = " ".join(host.agent_argv("C", "-o", "status", "-H", "vmC"))
    return hyperfine_median(host.node.ns, command, runs=runs, out=out, timeout=600)


def concurrent(hosts: list[Host], count: int) -> tuple[float, int]:
    """Wall seconds for ``count`` simultaneous requests, and how many answered 0."""
    processes = []
    begin = time.perf_counter()
    for i in range(1, count + 1):
        holder = i % NODES  # 0-based index of the node holding c{i}
        asker = hosts[(holder + 1) % NODES]  # another node
        argv = asker.node.ns.argv(*asker.agent_argv("C", "-o", "status", "-H", f"c{i:02d}"))
        processes.append(
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    codes = [p.wait(120) for p in processes]
    return time.perf_counter() - begin, sum(code == 0 for code in codes)


def measure(runs: int, work: Path) -> dict[str, dict[str, float]]:
    key = write_key(work / "fence_xvm.key")
    check = write_check(work)
    vms = layout(CONCURRENT)
    results: dict[str, dict[str, float]] = {}
    with corosync_cluster(NODES, tag="bcpg") as nodes:
        hosts = [Host(node, key, check, listener="tcp", debug=None) for node in nodes]
        try:
            for kind in ("C", "ours"):
                start(kind, hosts, vms)
                code, output = hosts[0].agent("C", "-o", "status", "-H", "vmC")
                if code != 0:
                    raise RuntimeError(f"{kind}: status vmC at node 1 gave {code}: {output}")
                median = latency(hosts[0], runs, work / f"{kind}.json")
                wall, ok = concurrent(hosts, CONCURRENT)
                results[kind] = {"latency": median, "concurrent": wall, "succeeded": ok}
                for host in hosts:
                    host.stop()
        finally:
            for host in hosts:
                host.stop()
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    c, ours = results["C"], results["ours"]
    print("\ncpg backend, 3 corosync nodes, C fence_virt -T client (test driver)")
    print(f"{'measure':34} {'C':>11} {'ours':>11} {'ours/C':>9}")
    print_ratio_row("status of a VM on node 3, at node 1", c["latency"], ours["latency"])
    print_ratio_row(
        f"{CONCURRENT} concurrent, spread over 3 nodes",
        c["concurrent"],
        ours["concurrent"],
        digits=0,
    )
    print(f"{'  of which answered 0':34} {int(c['succeeded']):11d} {int(ours['succeeded']):11d}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="hyperfine runs for the latency")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="fvt-bench-cpg-") as tmp:
        results = measure(args.runs, Path(tmp))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
