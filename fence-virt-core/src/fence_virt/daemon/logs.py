"""Logging set-up: stderr in the foreground, syslog (journald reads it) in the background."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

__all__ = ["configure_logging", "level_for_debug"]

_SYSLOG_SOCKET = "/dev/log"


def level_for_debug(debug: int) -> int:
    """C's ``-d N``: 0 logs requests and errors; 1 and above add debug detail."""
    return logging.DEBUG if debug > 0 else logging.INFO


def configure_logging(*, foreground: bool, debug: int, program: str = "fence_virtd") -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if foreground or not os.path.exists(_SYSLOG_SOCKET):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(
            address=_SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
        handler.setFormatter(logging.Formatter(f"{program}[{os.getpid()}]: %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level_for_debug(debug))
    # stevedore logs plugin load failures itself; ours name the distribution and stop the daemon
    logging.getLogger("stevedore").setLevel(logging.CRITICAL)
