"""Benchmark: the C fence_virt on a guest's serial line, against the C fence_virtd's serial
listener and against ours (serial + libvirt).

Run as root from the repository root::

    .venv/bin/python bench/serial.py            # add --json FILE to keep the numbers

Set-up (recipes §3a): a libvirt test-driver node file whose guest domains have a serial
device bound to a UNIX socket; socat listens on each socket as QEMU would and gives the
guest's end as a PTY, on which the C ``fence_virt -D`` runs. Each daemon reads the node file
in-process (its own test-driver state), runs in a namespace of its own (serial needs no
network) without debug logging, and fences the node's other domains.

Part 1, latency: hyperfine runs ``fence_virt -D PTY`` for each operation and reports the
median; ``off``, ``on`` and ``reboot`` get a ``--prepare`` step that puts the target in the
right state first. The ratio is ours / C.

Part 2, many guests at once: ``--guests`` guests (32) each fence a VM of their own; every
client waits on a FIFO before it is exec'd, all are released at once, and the wall time runs
until the last one exits (client timeout 30 s, the default). C serves one socket at a time and
sleeps 1 s in every reboot; ours serves every socket in its own task.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchkit import hyperfine_median, released_at_once, side_by_side_daemon

from fence_virt_testinfra.c_suite import write_key as make_key
from fence_virt_testinfra.channels import C_FENCE_VIRT, SerialSetup, socat_pty, socket_domain_xml
from fence_virt_testinfra.netns import netns

#: the client's own timeout in the concurrency part (seconds; the C default)
CLIENT_TIMEOUT = 30


def node_xml(sock_dir: Path, guests: int) -> str:
    """``guests`` guests g01.. with a serial socket each, and as many plain VMs vm01.."""
    domains = [
        socket_domain_xml(
            f"g{i:02d}", f"00000000-0000-4000-8000-{i:012d}", serial=[sock_dir / f"g{i:02d}.sock"]
        )
        for i in range(1, guests + 1)
    ]
    domains += [
        socket_domain_xml(f"vm{i:02d}", f"00000000-0000-4000-9000-{i:012d}")
        for i in range(1, guests + 1)
    ]
    return "<node>\n" + "\n".join(domains) + "\n</node>\n"


@contextlib.contextmanager
def setup(kind: str, work: Path, guests: int) -> Iterator[list[Path]]:
    """socat on every guest socket, then the daemon; yields the guests' PTYs once the daemon
    connected to all of them. Everything is stopped by PID on exit."""
    sock_dir = Path(tempfile.mkdtemp(prefix="fvb", dir="/tmp"))
    node = sock_dir / "node.xml"
    node.write_text(node_xml(sock_dir, guests))
    uri = f"test://{node}"
    workdir = work / kind
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: subprocess.run(["rm", "-rf", str(sock_dir)], check=False))
        ttys = []
        for i in range(1, guests + 1):
            socket = sock_dir / f"g{i:02d}.sock"
            tty = sock_dir / f"g{i:02d}.tty"
            stack.enter_context(socat_pty(socket, tty, workdir / f"socat-{i:02d}.log"))
            ttys.append(tty)
        ns = stack.enter_context(netns(f"bs{kind[0]}"))
        config = SerialSetup(uri=uri, path=sock_dir, key_file=make_key(workdir / "key"))
        # ready once the daemon connected every guest socket (socat then makes each PTY)
        connected = lambda: all(t.exists() for t in ttys)  # noqa: E731
        stack.enter_context(side_by_side_daemon(kind, ns, workdir, config, connected, 60))
        time.sleep(1.5)  # C: serial_init sleeps 1 s before the dispatch loop runs
        yield ttys


# ---------------------------------------------------------------------------------------------
# part 1: latency


def latency(kind: str, work: Path, runs: int, reboot_runs: int) -> dict[str, float]:
    """Median seconds per operation (hyperfine), one guest fencing vm01."""
    with setup(kind, work / "lat", 1) as (tty,):
        agent = f"{C_FENCE_VIRT} -D {tty}"
        check = subprocess.run(
            [*agent.split(), "-o", "status", "-H", "vm01"], capture_output=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"{kind} daemon does not answer: {check.stdout!r}")
        plan = [
            ("status", f"{agent} -o status -H vm01", None, runs),
            ("list", f"{agent} -o list", None, runs),
            ("off", f"{agent} -o off -H vm01", f"{agent} -o on -H vm01", runs),
            ("on", f"{agent} -o on -H vm01", f"{agent} -o off -H vm01", runs),
            ("reboot", f"{agent} -o reboot -H vm01", f"{agent} -o on -H vm01", reboot_runs),
        ]
        return {
            name: hyperfine_median(
                None,
                command,
                runs=count,
                out=work / f"lat-{kind}-{name}.json",
                prepare=prepare,
                warmup=2,
            )
            for name, command, prepare, count in plan
        }


# ---------------------------------------------------------------------------------------------
# part 2: many guests at once


def released(ttys: list[Path], operation: str, fifo: Path) -> tuple[float, int]:
    """(seconds until the last fence_virt exits, how many succeeded): one per PTY, at once."""
    clients = [
        ([], f"{C_FENCE_VIRT} -D {tty} -t {CLIENT_TIMEOUT} -o {operation} -H vm{i:02d}")
        for i, tty in enumerate(ttys, start=1)
    ]
    return released_at_once(clients, fifo, CLIENT_TIMEOUT + 60)


def concurrency(kind: str, work: Path, guests: int, repeat: int) -> dict[str, tuple[float, int]]:
    """Per operation: (median wall time, successes of that run)."""
    results = {}
    with setup(kind, work / "conc", guests) as ttys:
        for operation, times in (("status", repeat), ("reboot", 1)):
            runs = sorted(released(ttys, operation, work / f"gate-{kind}") for _ in range(times))
            results[operation] = runs[len(runs) // 2]
    return results


# ---------------------------------------------------------------------------------------------
# report


def report(lat: dict[str, dict[str, float]], conc: dict[str, dict[str, tuple[float, int]]]) -> None:
    print("\nLatency over serial: C fence_virt -D on a socat PTY, median of hyperfine runs")
    print(f"{'operation':10} {'C daemon':>12} {'ours':>12} {'ours/C':>8}")
    for op in lat["c"]:
        c, ours = lat["c"][op], lat["ours"][op]
        print(f"{op:10} {c * 1000:9.2f} ms {ours * 1000:9.2f} ms {ours / c:8.3f}")
    if not conc:
        return
    print("\nMany guests at once: wall time until the last fence_virt exits")
    print(f"{'operation':10} {'C daemon':>22} {'ours':>22}")
    for op in conc["c"]:
        (ct, cn), (ot, on) = conc["c"][op], conc["ours"][op]
        print(f"{op:10} {ct:8.3f} s {cn:3d} ok {'':4} {ot:8.3f} s {on:3d} ok")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="hyperfine runs per operation")
    parser.add_argument("--reboot-runs", type=int, default=10, help="runs for reboot (C: 1 s)")
    parser.add_argument("--guests", type=int, default=32, help="concurrent guests")
    parser.add_argument("--repeat", type=int, default=5, help="bursts of status (median)")
    parser.add_argument("--no-concurrency", action="store_true", help="latency only")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces, /tmp sockets)")
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp:
        work = Path(tmp)
        lat = {k: latency(k, work, args.runs, args.reboot_runs) for k in ("c", "ours")}
        conc = {}
        if not args.no_concurrency:
            conc = {k: concurrency(k, work, args.guests, args.repeat) for k in ("c", "ours")}
    report(lat, conc)
    if args.json:
        args.json.write_text(json.dumps({"latency": lat, "concurrency": conc}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
