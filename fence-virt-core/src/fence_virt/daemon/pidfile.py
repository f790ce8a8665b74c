"""The pid file: refuse a second daemon, record ours, remove it at exit (c-suite-spec §5.2)."""

from __future__ import annotations

import os
from pathlib import Path

from fence_virt.errors import UserError

__all__ = ["PidFile"]


class PidFile:
    def __init__(self, path: str | os.PathLike[str], program: str = "fence_virtd") -> None:
        self.path = Path(path)
        self._program = program
        self._written_pid: int | None = None

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.path.read_text().strip() or "0")
        except (OSError, ValueError):
            return None
        if pid <= 0 or pid == os.getpid():
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if self._program.encode() in cmdline else None

    def acquire(self) -> None:
        """Write our pid; raise UserError if the file names another running daemon."""
        pid = self._running_pid()
        if pid is not None:
            raise UserError(f"{self._program} is already running (pid {pid}, pid file {self.path})")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise UserError(f"cannot write pid file {self.path}: {exc.strerror}") from exc
        self._written_pid = os.getpid()

    def release(self) -> None:
        """Remove the file if it still holds our pid."""
        if self._written_pid is None:
            return
        try:
            if self.path.read_text().strip() == str(self._written_pid):
                self.path.unlink()
        except OSError:
            pass
        self._written_pid = None
