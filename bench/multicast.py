"""Benchmark: the C fence_xvm against the C fence_virtd and against ours (multicast + libvirt).

Run as root from the repository root::

    .venv/bin/python bench/multicast.py            # add --json FILE to keep the numbers

Part 1, latency: each daemon in a fresh network namespace holding only ``lo``, backend
``test:///default``, no debug logging; hyperfine runs inside the namespace (so ``ip netns
exec`` is not timed) and reports the median of each operation; the ratio is ours / C.
``off`` and ``on`` get a ``--prepare`` step that puts the domain in the opposite state first.

Part 2, concurrency (reference recipes §7b): a host namespace with a bridge and 64 guest
namespaces, one veth each; the daemon listens on the bridge, the backend is a test-driver
node with 64 running domains. Each guest's fence_xvm waits on a FIFO before it is exec'd,
all are released at once, and the wall time runs until the last one exits. Throughput is
successful requests per second; the ratio is ours / C.

Targets (issue 5): status and list <= 1.0x C; reboot <= 0.05x C; throughput >= 4x C.
Network safety: all traffic stays in the namespaces made here (fence_virt_testinfra.netns).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchkit import hyperfine_median, released_at_once, side_by_side_daemon

from fence_virt_testinfra.c_suite import C_FENCE_XVM, MulticastSetup
from fence_virt_testinfra.c_suite import write_key as make_key
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.topology import bridged_hosts

TARGETS = {"status": 1.0, "list": 1.0, "reboot": 0.05}
THROUGHPUT_TARGET = 4.0


# ---------------------------------------------------------------------------------------------
# daemons


def udp_port_bound(ns: NetNS, port: int) -> bool:
    text = ns.run("cat", "/proc/net/udp", "/proc/net/udp6").stdout
    return f":{port:04X} " in text


def daemon(kind: str, ns: NetNS, workdir: Path, setup: MulticastSetup):
    """The C or our fence_virtd, side by side, ready once its UDP port is bound."""
    return side_by_side_daemon(kind, ns, workdir, setup, lambda: udp_port_bound(ns, setup.port))


# ---------------------------------------------------------------------------------------------
# part 1: hyperfine


def hyperfine(ns: NetNS, key: Path, workdir: Path, runs: int, reboot_runs: int) -> dict[str, float]:
    """Median seconds per operation, hyperfine inside ``ns``."""
    xvm = f"{C_FENCE_XVM} -k {key}"
    plan = [
        ("status", f"{xvm} -o status -H test", None, runs),
        ("list", f"{xvm} -o list", None, runs),
        ("off", f"{xvm} -o off -H test", f"{xvm} -o on -H test", runs),
        ("on", f"{xvm} -o on -H test", f"{xvm} -o off -H test", runs),
        ("reboot", f"{xvm} -o reboot -H test", f"{xvm} -o on -H test", reboot_runs),
    ]
    return {
        name: hyperfine_median(
            ns, command, runs=count, out=workdir / f"{name}.json", prepare=prepare, warmup=2
        )
        for name, command, prepare, count in plan
    }


def latency(kind: str, key: Path, workdir: Path, runs: int, reboot_runs: int) -> dict[str, float]:
    with netns(f"bl{kind[0]}") as ns:
        setup = MulticastSetup(key_file=key, uri="test:///default")
        with daemon(kind, ns, workdir / f"lat-{kind}", setup):
            check = ns.run(C_FENCE_XVM, "-k", str(key), "-o", "status", "-H", "test", check=False)
            if check.returncode != 0:
                raise RuntimeError(f"{kind} daemon does not answer: {check.stdout}{check.stderr}")
            return hyperfine(ns, key, workdir / f"lat-{kind}", runs, reboot_runs)


# ---------------------------------------------------------------------------------------------
# part 2: many guests at once


def node_xml(count: int) -> str:
    domains = "".join(
        f"<domain type='test'><name>vm{i:02d}</name>"
        f"<uuid>00000000-0000-4000-8000-{i:012d}</uuid><memory>65536</memory><vcpu>1</vcpu>"
        "<os><type arch='i686'>hvm</type></os></domain>\n"
        for i in range(1, count + 1)
    )
    return (
        "<node><cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes>"
        "<sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>"
        f"<memory>8388608</memory>\n{domains}</node>\n"
    )


def released(guests: list[NetNS], key: Path, operation: str, fifo: Path) -> tuple[float, int]:
    """(seconds until the last fence_xvm exits, how many succeeded): one per guest, at once."""
    clients = [
        (guest.argv(), f"{C_FENCE_XVM} -k {key} -o {operation} -H vm{i:02d}")
        for i, guest in enumerate(guests, start=1)
    ]
    return released_at_once(clients, fifo, 120)


def concurrency(
    kind: str, key: Path, workdir: Path, count: int, repeat: int
) -> dict[str, tuple[float, int]]:
    """Per operation: (median wall time, successes of that run); status ``repeat`` times."""
    workdir.mkdir(parents=True, exist_ok=True)
    node = workdir / f"node-{kind}.xml"
    node.write_text(node_xml(count))
    results = {}
    # the daemon's host holds the bridge (br0, 198.51.100.1); guests .11, .12, ... on veths
    with bridged_hosts(count) as (host, guests):
        setup = MulticastSetup(key_file=key, uri=f"test://{node}", interface="br0")
        with daemon(kind, host, workdir / f"conc-{kind}", setup):
            for operation, times in (("status", repeat), ("reboot", 1)):
                runs = sorted(
                    released(guests, key, operation, workdir / f"gate-{kind}") for _ in range(times)
                )
                results[operation] = runs[len(runs) // 2]
    return results


# ---------------------------------------------------------------------------------------------
# report


def report(lat: dict[str, dict[str, float]], conc: dict[str, dict[str, tuple[float, int]]]):
    print("\nLatency: C fence_xvm, median of hyperfine runs (test:///default)")
    print(f"{'operation':10} {'C daemon':>12} {'ours':>12} {'ours/C':>8}  target")
    for op in lat["c"]:
        c, ours = lat["c"][op], lat["ours"][op]
        target = TARGETS.get(op)
        verdict = (
            "" if target is None else f"<= {target}  {'ok' if ours / c <= target else 'MISSED'}"
        )
        print(f"{op:10} {c * 1000:9.2f} ms {ours * 1000:9.2f} ms {ours / c:8.3f}  {verdict}")
    if not conc:
        return
    guests = None
    print("\nConcurrency: all guests released at once, wall time until the last exits")
    print(f"{'operation':10} {'C daemon':>22} {'ours':>22} {'throughput ours/C':>18}")
    for op in conc["c"]:
        (ct, cn), (ot, on) = conc["c"][op], conc["ours"][op]
        guests = guests or cn
        ratio = (on / ot) / (cn / ct) if cn else float("inf")
        verdict = "ok" if ratio >= THROUGHPUT_TARGET else "MISSED"
        print(
            f"{op:10} {ct:8.3f} s {cn:3d} ok {'':4} {ot:8.3f} s {on:3d} ok {'':4}"
            f"{ratio:10.1f}x  (>= {THROUGHPUT_TARGET}: {verdict})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="hyperfine runs per operation")
    parser.add_argument("--reboot-runs", type=int, default=10, help="runs for reboot (C: 1 s)")
    parser.add_argument("--guests", type=int, default=64, help="concurrent guests")
    parser.add_argument("--repeat", type=int, default=5, help="bursts of status (median)")
    parser.add_argument("--no-concurrency", action="store_true", help="latency only")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp:
        work = Path(tmp)
        key = make_key(work / "fence_xvm.key")
        lat = {k: latency(k, key, work, args.runs, args.reboot_runs) for k in ("c", "ours")}
        conc = {}
        if not args.no_concurrency:
            conc = {k: concurrency(k, key, work, args.guests, args.repeat) for k in ("c", "ours")}
    report(lat, conc)
    if args.json:
        args.json.write_text(json.dumps({"latency": lat, "concurrency": conc}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
