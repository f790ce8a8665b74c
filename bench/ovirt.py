"""Benchmark: the ovirt backend through fence_virtd against the fake oVirt engine.

Run as root from the repository root::

    .venv/bin/python bench/ovirt.py                    # engine delay 20 ms per request
    .venv/bin/python bench/ovirt.py --delay 0.1 --down-after 1 --up-after 1 --json out.json

In a fresh network namespace holding only ``lo``: the fake engine (a test double, see
fence_virt_testinfra.ovirt_engine: no oVirt engine can run here) on 127.0.0.1 with
``--vms`` VMs, each answering every API request after ``--delay`` seconds and taking
``--down-after`` / ``--up-after`` seconds to go down / come up; our fence_virtd with the
tcp listener and the ovirt backend (``--connections`` pooled connections); the C
``fence_virt -T`` as the client, started inside the namespace.

It prints, per operation, the median and 90th percentile of the agent's wall time (agent
start-up and ``ip netns exec`` included) and the engine requests one operation made; then
fires ``--vms`` reboots at once and prints the total time against one reboot's: if a fence
waited for another VM's power-off poll the total would grow with the number of VMs (about
``vms / connections`` times one reboot at best, ``vms`` times at worst), while concurrent
fences finish in about one reboot's time. The engine's own counters show the one shared token
and the bound on requests in flight.

Network safety: all traffic stays in the namespace made here (fence_virt_testinfra.netns).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.c_tcp import C_FENCE_VIRT
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.ours import running_fence_virtd
from fence_virt_testinfra.ovirt_engine import FakeEngine, FakeVm
from fence_virt_testinfra.setns import in_netns
from fence_virt_testinfra.tls import throwaway_pki

USER = "bench@internal"
PASSWORD = "bench-secret"  # noqa: S105 - the fake engine's account


def config_text(work: Path, engine: FakeEngine, key: Path, connections: int) -> Path:
    password = work / "ovirt.pass"
    password.write_text(PASSWORD)
    password.chmod(0o600)
    path = work / "fence_virt.conf"
    path.write_text(
        'fence_virtd { listener = "tcp"; backend = "ovirt"; }\n'
        f'listeners {{ tcp {{ key_file = "{key}"; address = "127.0.0.1"; }} }}\n'
        f'backends {{ ovirt {{ url = "{engine.url}"; username = "{USER}";\n'
        f'  password_file = "{password}"; ca_file = "{engine.pki.ca_file}";\n'
        f'  timeout = "10"; power_timeout = "60"; connections = "{connections}"; }} }}\n'
    )
    path.chmod(0o600)
    return path


def agent(key: Path, *args: str) -> list[str]:
    return [C_FENCE_VIRT, "-T", "127.0.0.1", "-k", str(key), "-t", "60", *args]


def timed(ns: NetNS, argv: list[str]) -> float:
    """Seconds one agent run took; RuntimeError if it failed."""
    start = time.perf_counter()
    done = subprocess.run(ns.argv(*argv), capture_output=True, text=True, timeout=120, check=False)
    took = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode} {done.stdout}{done.stderr}")
    return took


def latency(ns: NetNS, key: Path, engine: FakeEngine, runs: int) -> dict[str, dict[str, float]]:
    """Median / p90 seconds and engine requests per operation, on VM vm0."""
    found: dict[str, dict[str, float]] = {}
    for operation in ("status", "reboot"):
        times = []
        before = len(engine.requests)
        for _ in range(runs):
            times.append(timed(ns, agent(key, "-o", operation, "-H", "vm0")))
        requests = (len(engine.requests) - before) / runs
        times.sort()
        found[operation] = {
            "median": statistics.median(times),
            "p90": times[int(0.9 * (len(times) - 1))],
            "requests": requests,
        }
    return found


def concurrent(ns: NetNS, key: Path, engine: FakeEngine, vms: int) -> dict[str, float]:
    """Reboot every VM at once: total seconds, slowest and fastest agent, engine counters."""
    with engine.locked:
        engine.max_in_flight = 0
    tokens = engine.tokens_issued
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ns.argv(*agent(key, "-o", "reboot", "-H", f"vm{i}")),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(vms)
    ]
    ends = []
    failed = []
    for i, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=300)
        ends.append(time.perf_counter() - start)
        if proc.returncode != 0:
            failed.append(f"vm{i}: exit {proc.returncode} {out.decode().strip()}")
    total = time.perf_counter() - start
    if failed:
        raise RuntimeError("concurrent reboots failed: " + "; ".join(failed))
    boots = [engine.vm(f"vm{i}").boots for i in range(vms)]
    return {
        "total": total,
        "first_done": min(ends),
        "last_done": max(ends),
        "new_tokens": engine.tokens_issued - tokens,
        "max_in_flight": engine.max_in_flight,
        "vms_rebooted": sum(1 for b in boots if b >= 1),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    key = write_key(work / "fence_xvm.key")
    engine = FakeEngine(throwaway_pki(work / "pki", tag="engine"), {USER: PASSWORD})
    for i in range(args.vms):
        engine.add_vm(
            FakeVm(f"vm{i}", users={USER}, down_after=args.down_after, up_after=args.up_after)
        )
    engine.delay = args.delay
    with netns("bo") as ns:
        in_netns(ns, engine.start)
        try:
            config = config_text(work, engine, key, args.connections)
            with running_fence_virtd(ns, work / "fvd", config):
                timed(ns, agent(key, "-o", "status", "-H", "vm0"))  # warm-up: log in
                lat = latency(ns, key, engine, args.runs)
                # the boot counters are reset so "rebooted" counts the concurrent run only
                with engine.locked:
                    for vm in engine.vms.values():
                        vm.boots = 0
                together = concurrent(ns, key, engine, args.vms)
        finally:
            engine.stop()
    return {
        "delay": args.delay,
        "down_after": args.down_after,
        "up_after": args.up_after,
        "connections": args.connections,
        "latency": lat,
        "concurrent": together,
        "tokens_issued": engine.tokens_issued,
    }


def report(result: dict[str, object], vms: int) -> None:
    lat = result["latency"]
    together = result["concurrent"]
    assert isinstance(lat, dict)
    assert isinstance(together, dict)
    print(
        f"\nfake engine: {result['delay']} s per request, down after {result['down_after']} s,"
        f" up after {result['up_after']} s; backend pool: {result['connections']} connections"
    )
    print(f"{'operation':10} {'median':>10} {'p90':>10} {'engine requests':>16}")
    for op, row in lat.items():
        print(
            f"{op:10} {row['median'] * 1000:7.1f} ms {row['p90'] * 1000:7.1f} ms"
            f" {row['requests']:16.1f}"
        )
    one = lat["reboot"]["median"]
    print(f"\n{vms} reboots at once (one agent each):")
    print(f"  all done after          {together['total']:7.2f} s")
    print(
        f"  first / last agent done {together['first_done']:7.2f} s / {together['last_done']:.2f} s"
    )
    print(f"  one reboot alone        {one:7.2f} s  (total / one = {together['total'] / one:.2f})")
    print(
        f"  if serialized per VM    {vms * one:7.2f} s;"
        f" per connection {vms * one / int(result['connections']):.2f} s"  # type: ignore[call-overload]
    )
    print(f"  VMs rebooted            {together['vms_rebooted']:7d} of {vms}")
    issued, bound = result["tokens_issued"], result["connections"]
    print(f"  new tokens              {together['new_tokens']:7d} (issued in all: {issued})")
    print(f"  max requests in flight  {together['max_in_flight']:7d} (pool bound {bound})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02, help="engine seconds per request")
    parser.add_argument("--down-after", type=float, default=0.5, help="seconds stop -> down")
    parser.add_argument("--up-after", type=float, default=0.5, help="seconds start -> up")
    parser.add_argument("--vms", type=int, default=32, help="VMs, and concurrent reboots")
    parser.add_argument("--connections", type=int, default=8, help="the backend's pool bound")
    parser.add_argument("--runs", type=int, default=20, help="runs per operation for latency")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp:
        result = run(args, Path(tmp))
    report(result, args.vms)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
