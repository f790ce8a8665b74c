"""Our own programs as test peers: ``fence_virtd`` and ``fence_xvm`` from the dev venv.

The counterpart of :mod:`fence_virt_testinfra.c_suite`: :func:`our_fence_virtd` takes the
same :class:`~fence_virt_testinfra.c_suite.MulticastSetup` as
:func:`~fence_virt_testinfra.c_suite.c_fence_virtd`, so a test can swap daemons. Every daemon
runs in a namespace the test made and is stopped by PID on exit, also when the test failed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path

from fence_virt_testinfra.c_suite import MulticastSetup
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.tools import unavailable

__all__ = [
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
#: what fence_virtd logs (also without -d) once its listener serves and its backend runs
STARTED = "fence_virtd started"
#: (plugin group, entry point, distribution) our fence_virtd needs for the multicast chain
_DAEMON_PLUGINS = (
    ("fence_virt.listeners", "multicast", "fence-virt-listener-multicast"),
    ("fence_virt.backends", "libvirt", "fence-virt-backend-libvirt"),
)


def our_agent() -> Path | None:
    """Our ``fence_xvm`` console script beside this interpreter, if installed."""
    path = Path(FENCE_XVM)
    return path if path.exists() else None


def missing_daemon_plugins() -> list[str]:
    """Distributions our daemon lacks for multicast + libvirt (entry points not installed)."""
    return [
        f"{dist} (entry point {name!r} in {group})"
        for group, name, dist in _DAEMON_PLUGINS
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
) -> Iterator[Daemon]:
    """Our fence_virtd in ``ns`` (see :func:`fence_virtd_argv`), stopped by PID on exit.

    Pid file and log (``fence_virtd.log``) go to ``workdir``. Returns once the daemon logged
    :data:`STARTED`; RuntimeError with its log if it exits first, TimeoutError after
    ``timeout`` seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    argv = fence_virtd_argv(config, workdir / "fence_virtd.pid", debug=debug)
    daemon = Daemon(ns.argv(*argv), workdir / "fence_virtd.log")
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
