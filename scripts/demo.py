"""The README's main command: one fence, from request to result, on the embedded default.

``scripts/demo`` runs this after ``scripts/bootstrap`` and ``fence_virtd --list-plugins``.

Inside a network namespace it creates (only ``lo``, so no multicast leaves this machine), it
starts ``fence_virtd`` on its embedded default (multicast listener, libvirt test driver
``test:///default`` and its domain ``test``) and fences ``test`` with the ``fence_xvm`` agent:
status, off, status, on, status, reboot, status. Each step prints the command line, the
agent's answer, its exit status and what the daemon logged meanwhile. Needs root.

The daemon and the agent share ``/etc/cluster/fence_xvm.key`` (the default of both); the demo
creates it only if it is missing, and says so. Until our multicast listener, libvirt backend
and agent are installed, the C suite's fence_virtd and fence_xvm stand in (``--c-suite``
forces them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from fence_virt_testinfra.c_suite import (
    C_FENCE_XVM,
    MulticastSetup,
    c_fence_virtd,
    have_c_suite,
    run_in,
    write_key,
)
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.ours import (
    fence_virtd_argv,
    missing_daemon_plugins,
    our_agent,
    running_fence_virtd,
)
from fence_virt_testinfra.processes import Daemon

__all__ = ["DOMAIN", "KEY_FILE", "STEPS", "main"]

DOMAIN = "test"
KEY_FILE = Path("/etc/cluster/fence_xvm.key")
#: (operation, expected exit status): fence_xvm's status exits 0 for ON, 2 for OFF
STEPS = (
    ("status", 0),
    ("off", 0),
    ("status", 2),
    ("on", 0),
    ("status", 0),
    ("reboot", 0),
    ("status", 0),
)
_PORT = 1229


@dataclass(frozen=True)
class Stack:
    """Which daemon and agent the demo runs."""

    title: str
    agent: str
    daemon: Callable[[NetNS, Path], AbstractContextManager[Daemon]]


def _our_daemon(ns: NetNS, workdir: Path) -> AbstractContextManager[Daemon]:
    _say(f"$ {' '.join(fence_virtd_argv(None, workdir / 'fence_virtd.pid'))}")
    return running_fence_virtd(ns, workdir, None)


def _c_daemon(ns: NetNS, workdir: Path) -> AbstractContextManager[Daemon]:
    setup = MulticastSetup(key_file=KEY_FILE, port=_PORT)
    _say("$ fence_virtd -F -d 99 -f fence_virt.conf  (C; multicast + libvirt test:///default)")
    return c_fence_virtd(ns, workdir, setup)


def choose_stack(force_c: bool) -> Stack:
    """Ours when every piece is installed (unless ``force_c``), else the C stand-ins."""
    agent = our_agent()
    missing = missing_daemon_plugins() + ([] if agent else ["our fence_xvm agent"])
    if agent is not None and not missing and not force_c:
        return Stack("fence-virt (Python): our fence_virtd and fence_xvm", str(agent), _our_daemon)
    if not have_c_suite():
        raise SystemExit(f"missing {', '.join(missing)}, and the C suite is not installed")
    why = "forced by --c-suite" if force_c else f"missing {', '.join(missing)}"
    return Stack(f"C suite stand-ins ({why})", C_FENCE_XVM, _c_daemon)


def _meaning(operation: str, status: int) -> str:
    if operation == "status":
        return {0: "ON", 2: "OFF"}.get(status, "failure")
    return "success" if status == 0 else "failure"


def _say(line: str) -> None:
    print(line, flush=True)


def ensure_key() -> None:
    if KEY_FILE.exists():
        _say(f"key: using the existing {KEY_FILE}")
        return
    KEY_FILE.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_key(KEY_FILE)
    _say(f"key: created {KEY_FILE} (4096 random bytes, mode 0600); it was missing")


def run_steps(ns: NetNS, stack: Stack, daemon: Daemon) -> bool:
    """Every step in order; stop at the first unexpected exit status."""
    seen = len(daemon.log())
    for number, (operation, expected) in enumerate(STEPS, 1):
        argv = [stack.agent, "-o", operation, "-H", DOMAIN]
        _say(f"\n[{number}/{len(STEPS)}] {operation} {DOMAIN}\n  $ {' '.join(argv)}")
        result = run_in(ns, argv, timeout=90)
        for line in (result.stdout + result.stderr).decode(errors="replace").splitlines():
            _say(f"  | {line}")
        status = result.returncode
        verdict = "as expected" if status == expected else f"EXPECTED {expected}"
        _say(f"  exit {status} ({_meaning(operation, status)}): {verdict}")
        log = daemon.log()
        for line in log[seen:].splitlines():
            _say(f"  daemon: {line}")
        seen = len(log)
        if status != expected:
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fence-virt-demo", description=__doc__.split("\n")[0])
    parser.add_argument("--c-suite", action="store_true", help="use the C daemon and agent")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        _say("the demo needs root: it creates a network namespace")
        return 1
    stack = choose_stack(args.c_suite)
    _say(f"fence-virt demo: {stack.title}")
    ensure_key()
    with tempfile.TemporaryDirectory(prefix="fvt-demo-") as tmp, netns("demo") as ns:
        # the embedded default names no interface: the group is joined where the route goes
        ns.ip("route", "add", "224.0.0.0/4", "dev", "lo")
        _say(f"namespace {ns.name}: only lo, multicast routed to lo")
        _say("daemon on the embedded default:")
        with stack.daemon(ns, Path(tmp)) as daemon:
            ok = run_steps(ns, stack, daemon)
    _say("\nresult: every step as expected" if ok else "\nresult: FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
