"""Our own programs as test peers: ``fence_virtd``, ``fence_xvm`` and ``fence_virt`` from the
dev venv.

The counterpart of :mod:`fence_virt_testinfra.c_suite`: :func:`our_fence_virtd` takes the
same :class:`~fence_virt_testinfra.c_suite.MulticastSetup` as
:func:`~fence_virt_testinfra.c_suite.c_fence_virtd`, so a test can swap daemons. Every daemon
runs in a namespace the test made and is stopped by PID on exit, also when the test failed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path

from fence_virt_testinfra.c_suite import MulticastSetup
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.tools import unavailable

__all__ = [
    "FENCE_VIRT",
    "FENCE_VIRTD",
    "FENCE_XVM",
    "STARTED",
    "fence_virtd_argv",
    "missing_daemon_plugins",
    "our_agent",
    "our_fence_virtd",
    "running_fence_virtd",
]

#: our console scripts beside this interpreter (the dev venv's bin/)
FENCE_VIRTD = str(Path(sys.executable).parent / "fence_virtd")
FENCE_XVM = str(Path(sys.executable).parent / "fence_xvm")
FENCE_VIRT = str(Path(sys.executable).parent / "fence_virt")
#: what fence_virtd logs (also without -d) once its listener serves and its backend runs
STARTED = "fence_virtd started"
#: (plugin group, entry point, distribution) our fence_virtd needs besides its listener
_BACKEND_PLUGIN = ("fence_virt.backends", "libvirt", "fence-virt-backend-libvirt")


def our_agent(name: str = "fence_xvm") -> Path | None:
    """Our ``fence_xvm`` (or ``fence_virt``) console script beside this interpreter, if
    installed."""
    path = Path(sys.executable).parent / name
    return path if path.exists() else None


def missing_daemon_plugins(listener: str = "multicast") -> list[str]:
    """Distributions our daemon lacks for ``listener`` + libvirt (entry points not
    installed); the listener plugin ``NAME`` comes from ``fence-virt-listener-NAME``."""
    needed = (
        ("fence_virt.listeners", listener, f"fence-virt-listener-{listener}"),
        _BACKEND_PLUGIN,
    )
    return [
        f"{dist} (entry point {name!r} in {group})"
        for group, name, dist in needed
        if not entry_points(group=group, name=name)
    ]


def fence_virtd_argv(config: Path | None, pid_file: Path, *, debug: int | None = None) -> list[str]:
    """``fence_virtd -F`` on ``config`` (``None``: ``--default-config``), with ``-d debug``."""
    argv = [FENCE_VIRTD, "-F"]
    if debug is not None:
        argv += ["-d", str(debug)]
    argv += ["--default-config"] if config is None else ["-f", str(config)]
    return [*argv, "-p", str(pid_file)]


@contextmanager
def running_fence_virtd(
    ns: NetNS,
    workdir: Path,
    config: Path | None,
    *,
    debug: int | None = None,
    timeout: float = 30,
    wrapper: Sequence[str] = (),
) -> Iterator[Daemon]:
    """Our fence_virtd in ``ns`` (see :func:`fence_virtd_argv`), stopped by PID on exit.

    Pid file and log (``fence_virtd.log``) go to ``workdir``. ``wrapper``: words put in front
    of the command inside the namespace, executing it in place (``env ...``, as
    :meth:`fence_virt_testinfra.faketime.FakeClock.wrapper`), so the PID stays the daemon's.
    Returns once the daemon logged :data:`STARTED`; RuntimeError with its log if it exits
    first, TimeoutError after ``timeout`` seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    argv = fence_virtd_argv(config, workdir / "fence_virtd.pid", debug=debug)
    daemon = Daemon(ns.argv(*wrapper, *argv), workdir / "fence_virtd.log")
    try:
        daemon.wait_for_log(STARTED, timeout)
        yield daemon
    finally:
        daemon.stop()


@contextmanager
def our_fence_virtd(
    ns: NetNS, workdir: Path, setup: MulticastSetup, *, debug: int | None = None
) -> Iterator[Daemon]:
    """Our fence_virtd serving ``setup`` (multicast listener, libvirt backend) in ``ns``.

    Skips the calling test, naming them, when the listener or backend distribution is not
    installed. Otherwise as :func:`running_fence_virtd`, with the config in ``workdir``.
    """
    missing = missing_daemon_plugins()
    if missing:
        unavailable(f"our fence_virtd lacks {', '.join(missing)}")
    workdir.mkdir(parents=True, exist_ok=True)
    config = setup.write(workdir / "fence_virt.conf")
    with running_fence_virtd(ns, workdir, config, debug=debug) as daemon:
        yield daemon
