"""Log records as journald entries with fields: ``journalctl REQUEST_ID=3fa9c2d1``.

journald's native protocol (systemd's "Native Journal Protocol" document): one datagram per
entry to ``/run/systemd/journal/socket``, each field ``NAME=value\\n``, or -- for a value
holding a newline -- ``NAME\\n``, its length as a little-endian 64-bit number, the bytes and
``\\n``. Written here rather than with ``systemd-python`` (its ``JournalHandler`` needs
libsystemd headers and a compiler at install time, for what is one ``sendto``).

Fields: ``MESSAGE``, ``PRIORITY`` (syslog's), ``SYSLOG_IDENTIFIER``, ``LOGGER`` (the Python
logger), ``REQUEST_ID`` on every line written while serving a request, and on a request's
summary line ``OPERATION``, ``TARGET``, ``REQUESTER``, ``LISTENER``, ``RESULT``,
``DURATION_MS`` (:data:`fence_virt.tracing.FIELDS`).

:func:`under_journald` says when to use it: systemd connected our stderr to the journal and
said so in ``$JOURNAL_STREAM`` (``DEVICE:INODE`` of that stream).
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping

from fence_virt.tracing import FIELDS, current_request_id

__all__ = ["JOURNAL_SOCKET", "JournalHandler", "encode_entry", "under_journald"]

JOURNAL_SOCKET = "/run/systemd/journal/socket"
#: entries larger than this are cut (a datagram has a size limit; journald accepts bigger
#: ones only through a passed memfd, which a traceback does not need)
MAX_MESSAGE_BYTES = 48 * 1024

_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY = 7


def _priority(level: int) -> int:
    """syslog priority of a logging level (crit 2, err 3, warning 4, info 6, debug 7)."""
    for threshold, priority in _PRIORITIES:
        if level >= threshold:
            return priority
    return _DEBUG_PRIORITY


def encode_entry(fields: Mapping[str, str]) -> bytes:
    """One journal entry in the native protocol (see the module docstring)."""
    parts = []
    for name, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(name.encode() + b"=" + data + b"\n")
    return b"".join(parts)


def under_journald(env: Mapping[str, str] | None = None, stream_fd: int | None = None) -> bool:
    """True when ``$JOURNAL_STREAM`` names our stderr (systemd's documented test).

    :param env: the environment (default :data:`os.environ`).
    :param stream_fd: the descriptor to compare (default stderr's).
    """
    env = os.environ if env is None else env
    expected = env.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        status = os.fstat(sys.stderr.fileno() if stream_fd is None else stream_fd)
    except (OSError, ValueError):
        return False
    return expected == f"{status.st_dev}:{status.st_ino}"


class JournalHandler(logging.Handler):
    """Sends every record to journald with the fields of the module docstring."""

    def __init__(self, identifier: str, address: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self._identifier = identifier
        self._address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        """The entry for ``record``, in the order sent."""
        message = self.format(record)
        if len(message) > MAX_MESSAGE_BYTES:
            message = message[:MAX_MESSAGE_BYTES] + " [cut]"
        fields = {
            "MESSAGE": message,
            "PRIORITY": str(_priority(record.levelno)),
            "SYSLOG_IDENTIFIER": self._identifier,
            "LOGGER": record.name,
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            fields["REQUEST_ID"] = request_id
        for attribute, name in FIELDS.items():
            value = getattr(record, attribute, None)
            if value is not None:
                fields[name] = str(value)
        return fields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._socket.sendto(encode_entry(self.fields(record)), self._address)
        except Exception:  # noqa: BLE001 -- logging's own convention: report, never raise
            self.handleError(record)

    def close(self) -> None:
        self._socket.close()
        super().close()
