"""Client end to end: ``fence_xvm -o status`` against the C fence_virtd, C agent vs ours.

Run as root from the repository root::

    .venv/bin/python bench/client_startup.py [--runs 100]

In one run: a private network namespace (only ``lo``), the C fence_virtd with the multicast
listener and the libvirt test driver, then hyperfine (``-N``, inside the namespace so that
``ip netns exec`` is not timed) on the C agent, ours, and the bare venv interpreter. Prints
the medians, ours - bare, and the target: ours <= C + bare interpreter.

Our agent runs as an installed one would: byte-compiled first and without
PYTHONDONTWRITEBYTECODE / PYTHONUNBUFFERED from the caller's environment. Two diagnostic rows
show where our time goes: importing the wire codec, and ``-o metadata`` (no codec, no network).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import fence_virt
from fence_virt_testinfra import c_suite
from fence_virt_testinfra.netns import netns
from fence_virt_testinfra.ours import FENCE_XVM as OURS

PYTHON = sys.executable


def commands(key: Path) -> dict[str, str]:
    status = f"-k {key} -o status -H vm1"
    return {
        "C fence_xvm -o status": f"{c_suite.C_FENCE_XVM} {status}",
        "our fence_xvm -o status": f"{OURS} {status}",
        "bare interpreter (python -c pass)": f"{PYTHON} -c pass",
        "diag: python -c 'import fence_virt.protocol'": f"{PYTHON} -c 'import fence_virt.protocol'",
        "diag: our fence_xvm -o metadata": f"{OURS} -o metadata",
    }


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "POSIXLY_CORRECT"):
        env.pop(name, None)
    return env


def hyperfine(ns_argv: list[str], cmds: dict[str, str], runs: int, out: Path) -> dict[str, float]:
    argv = [*ns_argv, "hyperfine", "-N", "--warmup", "10", "--runs", str(runs)]
    argv += ["--export-json", str(out), "--style", "basic"]
    for name, cmd in cmds.items():
        argv += ["--command-name", name, cmd]
    subprocess.run(argv, check=True, env=clean_env())
    results = json.loads(out.read_text())["results"]
    return {r["command"]: r["median"] * 1000 for r in results}


def check(ns_argv: list[str], cmd: str) -> None:
    """Both agents must really answer "Status: ON" before their time means anything."""
    result = subprocess.run(
        [*ns_argv, *cmd.split()], capture_output=True, text=True, env=clean_env(), check=False
    )
    if (result.returncode, result.stdout) != (0, "Status: ON\n"):
        raise SystemExit(f"{cmd!r} failed ({result.returncode}): {result.stdout}{result.stderr}")


def report(medians: dict[str, float]) -> None:
    c = medians["C fence_xvm -o status"]
    ours = medians["our fence_xvm -o status"]
    bare = medians["bare interpreter (python -c pass)"]
    print("\nmedians (ms)")
    for name, value in medians.items():
        print(f"  {name:<46} {value:8.2f}")
    print(f"\n  ours - bare interpreter                        {ours - bare:8.2f}")
    print(f"  C                                              {c:8.2f}")
    target = c + bare
    verdict = "met" if ours <= target else f"NOT met (over by {ours - target:.2f} ms)"
    print(f"  target ours <= C + bare = {target:.2f} ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    options = parser.parse_args()
    if not c_suite.have_c_suite():
        raise SystemExit("the C fence-virt suite (fence-virt, fence-virtd) is not installed")
    compileall.compile_dir(str(Path(fence_virt.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp, netns("bench") as ns:
        work = Path(tmp)
        key = c_suite.write_key(work / "fence_xvm.key")
        setup = c_suite.MulticastSetup(key_file=key, uri=c_suite.write_test_node(work / "node.xml"))
        with c_suite.c_fence_virtd(ns, work / "daemon", setup):
            cmds = commands(key)
            for name in ("C fence_xvm -o status", "our fence_xvm -o status"):
                check(ns.argv(), cmds[name])
            report(hyperfine(ns.argv(), cmds, options.runs, work / "hyperfine.json"))


if __name__ == "__main__":
    main()
