"""Logging for fence_virtd, installed once: stderr until the daemon detaches, then syslog;
journald with fields when systemd connected stderr to the journal.

:func:`install_logging` replaces the root logger's handlers with one :class:`DaemonLog`
handler. Its level follows the debug level (``-d`` or ``fence_virtd { debug }``, known only
once the config is read) and its destination switches from stderr to syslog (journald reads
it) when the daemon detaches -- two calls on the same handler, no second set-up. Under
systemd (``$JOURNAL_STREAM`` names our stderr) it writes journal entries with fields instead
(:mod:`fence_virt.daemon.journal`).

Every line written while a request is served ends with its id, `` [req=3fa9c2d1]``
(:mod:`fence_virt.tracing`): ``grep 3fa9c2d1`` follows one request from listener to backend
to reply.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from fence_virt.daemon.journal import JOURNAL_SOCKET, JournalHandler, under_journald
from fence_virt.tracing import current_request_id

__all__ = ["DaemonLog", "RequestTag", "install_logging", "level_for_debug"]

_SYSLOG_SOCKET = "/dev/log"
_STDERR_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s%(request_tag)s"


class RequestTag(logging.Filter):
    """Adds ``request_id`` (or ``None``) and ``request_tag`` (`` [req=ID]`` or ``""``) to
    every record, from the context of the thread that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = getattr(record, "request_id", None) or current_request_id()
        record.request_id = request_id
        record.request_tag = f" [req={request_id}]" if request_id else ""
        return True


def level_for_debug(debug: int) -> int:
    """C's ``-d N``: 0 logs requests and errors; 1 and above add debug detail."""
    return logging.DEBUG if debug > 0 else logging.INFO


class DaemonLog(logging.Handler):
    """The daemon's one log handler; forwards records to stderr or, once detached, syslog."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self._program = program
        self.addFilter(RequestTag())
        self._journal = under_journald() and os.path.exists(JOURNAL_SOCKET)
        self._target: logging.Handler = (
            JournalHandler(program) if self._journal else _stderr_handler()
        )

    def emit(self, record: logging.LogRecord) -> None:
        self._target.handle(record)

    def set_debug(self, debug: int) -> None:
        """Log at the level C's ``-d debug`` means."""
        logging.getLogger().setLevel(level_for_debug(debug))

    def detach(self) -> None:
        """Send everything to syslog from now on (stderr is /dev/null in the background).

        Stays on stderr when the machine has no syslog socket (containers), as before, and
        on journald when writing there already.
        """
        if self._journal or not os.path.exists(_SYSLOG_SOCKET):
            return
        handler = logging.handlers.SysLogHandler(
            address=_SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
        handler.setFormatter(
            logging.Formatter(
                f"{self._program}[{os.getpid()}]: %(name)s: %(message)s%(request_tag)s"
            )
        )
        old, self._target = self._target, handler
        old.close()

    def close(self) -> None:
        self._target.close()
        super().close()


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_STDERR_FORMAT))
    return handler


def install_logging(*, debug: int, program: str = "fence_virtd") -> DaemonLog:
    """Make :class:`DaemonLog` the root logger's only handler; returns it for later changes."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = DaemonLog(program)
    root.addHandler(handler)
    handler.set_debug(debug)
    # stevedore logs plugin load failures itself; ours name the distribution and stop the daemon
    logging.getLogger("stevedore").setLevel(logging.CRITICAL)
    return handler
