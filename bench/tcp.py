"""Benchmark: the C fence_virt -T against the C fence_virtd's tcp listener and against ours.

Run as root from the repository root::

    .venv/bin/python bench/tcp.py            # add --json FILE to keep the numbers

Both daemons run side by side in a fresh network namespace holding only ``lo`` -- the C one
with its tcp listener on 127.0.0.1:1229, ours on 127.0.0.1:1230 -- with the libvirt backend
on ``test:///default`` and no debug logging. hyperfine runs the C ``fence_virt -T`` inside
the namespace (so ``ip netns exec`` is not timed), in rounds alternating between the two
daemons; the median of every run of an operation is reported and the ratio is ours / C.

Network safety: all traffic stays in the namespaces made here (fence_virt_testinfra.netns).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchkit import hyperfine_times, side_by_side_daemon

from fence_virt_testinfra.c_suite import write_key as make_key
from fence_virt_testinfra.c_tcp import C_FENCE_VIRT, TcpSetup
from fence_virt_testinfra.netns import NetNS, netns

#: what the issue asks of status: no slower than C
TARGET = {"status": 1.0}


def tcp_listening(ns: NetNS, port: int) -> bool:
    """A socket in state LISTEN (0A) on ``port`` in ``ns``."""
    text = ns.run("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    return any(
        f":{port:04X} " in line and line.split()[3] == "0A" for line in text.splitlines()[1:]
    )


def daemon(kind: str, ns: NetNS, workdir: Path, setup: TcpSetup):
    """The C or our fence_virtd, side by side, ready once its TCP port listens."""
    return side_by_side_daemon(kind, ns, workdir, setup, lambda: tcp_listening(ns, setup.port))


def latency(key: Path, workdir: Path, runs: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median seconds per operation and daemon. Both daemons run side by side in one
    namespace (C on port 1229, ours on 1230) and are timed in alternating rounds, so load
    from elsewhere on the machine falls on both alike."""
    ports = {"c": 1229, "ours": 1230}
    times: dict[str, dict[str, list[float]]] = {"c": {}, "ours": {}}
    with netns("bt") as ns, contextlib.ExitStack() as stack:
        for kind, port in ports.items():
            setup = TcpSetup(key_file=key, uri="test:///default", port=port)
            stack.enter_context(daemon(kind, ns, workdir / kind, setup))
            agent = [C_FENCE_VIRT, "-T", "127.0.0.1", "-p", str(port), "-k", str(key)]
            check = ns.run(*agent, "-o", "status", "-H", "test", check=False)
            if check.returncode != 0:
                raise RuntimeError(f"{kind} daemon does not answer: {check.stdout}{check.stderr}")
        for name, args, undo in PLAN:
            for round_ in range(rounds):
                for kind, port in ports.items():
                    agent = f"{C_FENCE_VIRT} -T 127.0.0.1 -p {port} -k {key}"
                    prepare = f"{agent} {undo}" if undo else None
                    out = workdir / f"{kind}-{name}-{round_}.json"
                    found = hyperfine_times(
                        ns, f"{agent} {args}", runs=runs // rounds, out=out, prepare=prepare
                    )
                    times[kind].setdefault(name, []).extend(found)
    return {
        kind: {op: statistics.median(t) for op, t in ops.items()} for kind, ops in times.items()
    }


#: (operation, agent arguments, what puts the VM back before each run)
PLAN = [
    ("status", "-o status -H test", None),
    ("list", "-o list", None),
    ("off", "-o off -H test", "-o on -H test"),
    ("on", "-o on -H test", "-o off -H test"),
]


def report(lat: dict[str, dict[str, float]]) -> None:
    print("\nLatency: C fence_virt -T 127.0.0.1, median of hyperfine runs (test:///default)")
    print(f"{'operation':10} {'C daemon':>12} {'ours':>12} {'ours/C':>8}  target")
    for op in lat["c"]:
        c, ours = lat["c"][op], lat["ours"][op]
        target = TARGET.get(op)
        verdict = (
            "" if target is None else f"<= {target}  {'ok' if ours / c <= target else 'MISSED'}"
        )
        print(f"{op:10} {c * 1000:9.2f} ms {ours * 1000:9.2f} ms {ours / c:8.3f}  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per operation and daemon")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds they split into")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp:
        work = Path(tmp)
        key = make_key(work / "fence_xvm.key")
        lat = latency(key, work, args.runs, args.rounds)
    report(lat)
    if args.json:
        args.json.write_text(json.dumps({"latency": lat}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
