"""Detach into the background, but let the starting shell learn whether start-up worked.

The parent process waits on a pipe until the daemon reports ready (exit 0) or reports an
error (printed, exit 1) -- unlike C's ``daemon(0,0)``, which returns 0 before the listener
has even bound its socket.
"""

from __future__ import annotations

import os
import sys

__all__ = ["StartupReport", "detach"]

_READY = b"ready\n"


class StartupReport:
    """The daemon's side of the pipe; a no-op in the foreground."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = fd

    def _send(self, data: bytes) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, data)
            os.close(self._fd)
        except OSError:
            pass
        self._fd = None

    def ready(self) -> None:
        self._send(_READY)

    def failed(self, message: str) -> None:
        self._send(message.encode(errors="replace") + b"\n")


def _wait_for_child(read_fd: int) -> None:
    chunks = []
    while chunk := os.read(read_fd, 4096):
        chunks.append(chunk)
    answer = b"".join(chunks)
    if answer == _READY:
        os._exit(0)
    message = answer.decode(errors="replace").strip() or "daemon exited during start-up"
    sys.stderr.write(f"fence_virtd: {message}\n")
    os._exit(1)


def detach() -> StartupReport:
    """Double-fork into a new session; only the daemon returns from this call."""
    read_fd, write_fd = os.pipe()
    if os.fork() > 0:
        os.close(write_fd)
        _wait_for_child(read_fd)
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return StartupReport(write_fd)
