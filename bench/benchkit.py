"""What the benchmarks share: hyperfine inside a namespace, clients released at once, the C or
our fence_virtd started side by side, and the ratio rows they print.

Imported by the scripts next to it (``bench/`` is on ``sys.path`` when one runs as
``.venv/bin/python bench/NAME.py``). Times are seconds unless a name says otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from fence_virt_testinfra.c_suite import C_FENCE_VIRTD, c_plugin_dir
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_VIRTD as OUR_FENCE_VIRTD
from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = [
    "ConfigWriter",
    "hyperfine_median",
    "hyperfine_times",
    "print_ratio_row",
    "released_at_once",
    "side_by_side_daemon",
]


def hyperfine_times(
    ns: NetNS | None,
    command: str,
    *,
    runs: int,
    out: Path,
    prepare: str | None = None,
    warmup: int = 3,
    timeout: float = 1800,
) -> list[float]:
    """Seconds of each of ``runs`` runs of ``command`` (hyperfine without a shell; inside
    ``ns`` when given, so ``ip netns exec`` is not timed). ``prepare`` runs before each."""
    argv = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs)]
    argv += ["--export-json", str(out)]
    if prepare:
        argv += ["--prepare", prepare]
    argv.append(command)
    if ns is None:
        subprocess.run(argv, check=True, timeout=timeout, capture_output=True)
    else:
        ns.run(*argv, timeout=timeout)
    times: list[float] = json.loads(out.read_text())["results"][0]["times"]
    return times


def hyperfine_median(ns: NetNS | None, command: str, **options: object) -> float:
    """The median of :func:`hyperfine_times` (same arguments)."""
    return statistics.median(hyperfine_times(ns, command, **options))  # type: ignore[arg-type]


def released_at_once(
    clients: Sequence[tuple[Sequence[str], str]], fifo: Path, timeout: float
) -> tuple[float, int]:
    """Start every client, hold it at a FIFO, release all at once.

    ``clients``: (argv prefix that runs ``sh`` -- e.g. ``ns.argv()``, or ``[]`` --, the
    command line ``sh`` execs after the gate). Returns (seconds from the release until the
    last client exits, how many exited 0); each client may take ``timeout`` seconds.
    """
    os.mkfifo(fifo)
    gate = os.open(fifo, os.O_RDWR)  # a writer exists, so the clients' opens do not block
    procs = []
    try:
        for prefix, command in clients:
            argv = [*prefix, "sh", "-c", f"read _ < {fifo}; exec {command}"]
            procs.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        wait_until(lambda: all(_reads(p.pid, fifo) for p in procs), 30, "clients at the gate")
        started = time.monotonic()
        os.write(gate, b"\n" * len(procs))
        codes = [p.wait(timeout) for p in procs]
        return time.monotonic() - started, codes.count(0)
    finally:
        os.close(gate)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        fifo.unlink()


def _reads(pid: int, fifo: Path) -> bool:
    """``pid`` waits on ``fifo`` (its stdin is the FIFO: the shell's ``read`` opened it)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/0") == str(fifo)
    except OSError:
        return False


class ConfigWriter(Protocol):
    """A testinfra setup that writes a fence_virt.conf (C's needs its module path)."""

    def write(self, path: Path, module_path: str | None = None) -> Path: ...


@contextlib.contextmanager
def side_by_side_daemon(
    kind: str,
    ns: NetNS,
    workdir: Path,
    setup: ConfigWriter,
    bound: Callable[[], bool],
    timeout: float = 30,
) -> Iterator[Daemon]:
    """The C (``kind == "c"``) or our fence_virtd, without debug logging, in ``ns``; ready
    once ``bound()`` is true within ``timeout`` seconds (and, for ours, it logged its start);
    stopped by PID on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "c":
        config = setup.write(workdir / "c.conf", module_path=c_plugin_dir())
        argv = [C_FENCE_VIRTD, "-F", "-f", str(config), "-p", str(workdir / "c.pid")]
    else:
        config = setup.write(workdir / "ours.conf")
        argv = [OUR_FENCE_VIRTD, "-F", "-f", str(config), "-p", str(workdir / "ours.pid")]
    process = Daemon(ns.argv(*argv), workdir / f"{kind}.log")
    try:
        wait_until(bound, timeout, f"{kind} fence_virtd to be ready")
        if kind != "c":
            process.wait_for_log("fence_virtd started", 30)
        yield process
    finally:
        process.stop()


def print_ratio_row(label: str, first: float, second: float, *, digits: int = 2) -> None:
    """One row: label, both values (seconds, printed in ms with ``digits`` decimals) and
    second/first."""
    values = f"{first * 1000:8.{digits}f} ms {second * 1000:8.{digits}f} ms"
    print(f"{label:34} {values} {second / first:9.3f}")
