"""Our agents as an administrator installs them for Pacemaker (``scripts/install-agents``).

The install goes to a throwaway directory, never to ``/usr/sbin`` (where the C suite's
agents live): a virtual environment on the system interpreter under ``ROOT/prefix``,
readable and executable by every user, and the agents' names as links in ``ROOT/sbin``. A
Pacemaker test points its sandbox's ``/usr/sbin`` at them
(:meth:`fence_virt_testinfra.sandbox.Sandbox.install_agent`). Dependencies come as an
administrator's install gets them (uv's cache, else the package index): offline, a fresh
machine's cache lacks the index pages, since the bootstrap installs from the lock file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fence_virt_testinfra.plugins import repo_root

__all__ = ["ProductionInstall", "production_agents"]


@dataclass(frozen=True)
class ProductionInstall:
    """Where ``scripts/install-agents`` put the environment and the agents' names."""

    prefix: Path
    sbindir: Path

    def agent(self, name: str) -> Path:
        """``SBINDIR/NAME`` (``fence_xvm``, ``fence_virt``): the link Pacemaker would run."""
        return self.sbindir / name


@contextmanager
def production_agents(timeout: float = 300) -> Iterator[ProductionInstall]:
    """Run the checkout's ``scripts/install-agents`` into a fresh directory (at most
    ``timeout`` seconds); removed on exit. RuntimeError with the script's output when it
    fails."""
    root = Path(tempfile.mkdtemp(prefix="fvt-install-"))
    # every component down to the agents must be searchable by hacluster
    root.chmod(0o755)
    install = ProductionInstall(root / "prefix", root / "sbin")
    try:
        script = repo_root() / "scripts" / "install-agents"
        argv = [str(script), "--prefix", str(install.prefix)]
        argv += ["--sbindir", str(install.sbindir)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        yield install
    finally:
        shutil.rmtree(root, ignore_errors=True)
