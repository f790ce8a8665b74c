"""A sandbox for cluster daemons: a network namespace plus a private mount namespace.

The network namespace holds only ``lo`` (every multicast fence request stays in it); the
mount namespace, kept alive by a holder process, lets a test hide host directories under
tmpfs (:meth:`Sandbox.mount_tmpfs`) so nothing leaks to the host. Pacemaker's fencer looks for
agents in ``/usr/sbin``; :meth:`Sandbox.install_agent` lays an overlay there, in the sandbox
only, so that ``/usr/sbin/fence_xvm`` is a link to our production install (the C suite's
``/usr/sbin/fence_xvm`` is a symlink to ``fence_virt``: a bind mount would follow it and hide
``fence_virt`` as well).

Clean-up stops every process by PID (newest first) and deletes the namespace, even when a
test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = ["FENCE_BINDIR", "Sandbox", "command_error", "sandbox"]

#: Pacemaker's fencer runs agents from this directory (PCMK__FENCE_BINDIR)
FENCE_BINDIR = "/usr/sbin"


def command_error(result: subprocess.CompletedProcess[str]) -> RuntimeError:
    return RuntimeError(
        f"{' '.join(result.args)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
    )


class Sandbox:
    """A network namespace plus a private mount namespace; runs commands inside both."""

    def __init__(self, ns: NetNS, workdir: Path) -> None:
        self.ns = ns
        self.workdir = workdir
        self._daemons: list[Daemon] = []
        self._made_dirs: list[Path] = []
        hold = ns.argv("unshare", "--mount", "--propagation", "private", "sleep", "infinity")
        self.holder = Daemon(hold, workdir / "holder.log")
        wait_until(self._holder_ready, 10, "the sandbox's private mount namespace")

    def _holder_ready(self) -> bool:
        if self.holder.process.poll() is not None:
            raise RuntimeError(f"unshare exited: {self.holder.log()}")
        # unshare execs sleep only after it entered the new mount namespace
        return Path(f"/proc/{self.holder.pid}/comm").read_text().strip() == "sleep"

    def argv(self, *command: str) -> list[str]:
        """``command`` run in the sandbox (nsenter execs it: its PID is the caller's child)."""
        # --root/--wd: keep the holder's root and cwd, so this also works inside a chroot
        # (setns into a mount namespace otherwise resets the root to the namespace's own)
        return [
            "nsenter",
            f"--target={self.holder.pid}",
            "--mount",
            "--net",
            "--root",
            "--wd",
            "--",
            *command,
        ]

    def run(
        self, *command: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*command)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise command_error(result)
        return result

    def start(self, name: str, *command: str, env: Mapping[str, str] | None = None) -> Daemon:
        """A daemon in the sandbox, logging to ``workdir/NAME.log``; stopped by :meth:`close`."""
        daemon = Daemon(
            self.argv(*command), self.workdir / f"{name}.log", {**os.environ, **(env or {})}
        )
        self._daemons.append(daemon)
        return daemon

    def mount_tmpfs(self, target: str, mode: str = "755") -> None:
        path = Path(target)
        if not path.exists():
            path.mkdir(parents=True)
            self._made_dirs.append(path)
        self.run("mount", "-t", "tmpfs", "-o", f"mode={mode}", "fvt-sandbox", target)

    def install_agent(self, name: str, program: Path) -> None:
        """Make ``/usr/sbin/NAME`` a link to ``program``, for processes in the sandbox only
        (with the agents installed before it, until :meth:`remove_agents`).

        Pacemaker's controller runs as hacluster and asks every agent for its metadata, so
        ``program`` must run as hacluster: an agent from ``scripts/install-agents``
        (:mod:`fence_virt_testinfra.production`), not the checkout's venv under ``/root``.
        RuntimeError (with what hacluster saw) otherwise.
        """
        as_hacluster = self.run(
            "runuser", "-u", "hacluster", "--", str(program), "-o", "metadata", check=False
        )
        if as_hacluster.returncode != 0:
            raise RuntimeError(
                f"hacluster cannot run {program} (install it with scripts/install-agents):\n"
                f"{as_hacluster.stdout}{as_hacluster.stderr}"
            )
        layer = self.workdir / "agents"
        layer.mkdir(exist_ok=True)
        link = layer / name
        link.unlink(missing_ok=True)
        link.symlink_to(program)
        self._unmount_agents()
        options = f"lowerdir={layer}:{FENCE_BINDIR}"
        self.run("mount", "-t", "overlay", "-o", options, "fvt-agents", FENCE_BINDIR)

    def remove_agents(self) -> None:
        """Undo :meth:`install_agent`: the sandbox sees the host's ``/usr/sbin`` again, and
        the next install starts from an empty layer (a ``fence_virt`` link left there
        would also capture the C ``fence_xvm``, a symlink to ``fence_virt``)."""
        self._unmount_agents()
        for link in (self.workdir / "agents").glob("*"):
            link.unlink()

    def _unmount_agents(self) -> None:
        mounts = self.run("findmnt", "-n", "-o", "SOURCE", FENCE_BINDIR, check=False).stdout
        if "fvt-agents" in mounts.split():
            self.run("umount", FENCE_BINDIR)

    def close(self) -> None:
        while self._daemons:
            self._daemons.pop().stop()
        self.holder.stop()
        for path in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                path.rmdir()


@contextmanager
def sandbox(tag: str = "pcmk") -> Iterator[Sandbox]:
    """A fresh :class:`Sandbox`; its work directory is removed unless FVT_KEEP_WORKDIR is set."""
    workdir = Path(tempfile.mkdtemp(prefix=f"fvt-{tag}-"))
    # Pacemaker's daemons run as hacluster and append to the log file kept here
    workdir.chmod(0o755)
    try:
        with netns(tag) as ns:
            box = Sandbox(ns, workdir)
            try:
                yield box
            finally:
                box.close()
    finally:
        if not os.environ.get("FVT_KEEP_WORKDIR"):
            shutil.rmtree(workdir, ignore_errors=True)
