"""One libvirt URI: a shared connection that is reopened once when it turns out to be dead.

libvirt connections are thread-safe, so worker threads share one per URI; only replacing it
takes the lock. A replaced connection is not closed here: threads still using it finish
with an error, and libvirt-python closes it when the last reference goes.

C (``server/libvirt.c``) checks every connection before each request and, when one is dead,
retries every second until it is back, blocking the daemon; here a request that meets a dead
connection reopens it once and otherwise fails at once (c-suite-spec §6.1, §9.2 quirk 9).

libvirt-python has no per-call timeout. Every connection turns on libvirt keepalives
(:data:`DEFAULT_KEEPALIVE`) when an event loop runs in the process
(:func:`~fence_virt_libvirt.bind_running_loop`; the libvirt backend binds one at start): a
libvirtd that stops answering (hung, SIGSTOPped, its host gone) has its connection closed
after about ``interval * (count + 1)`` seconds, so a call blocked on it fails instead of
waiting forever. Opening a connection is not covered: a libvirtd that accepts the socket
but never answers blocks :func:`libvirt.open` until it answers or goes away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from fence_virt.errors import BackendError

__all__ = [
    "DEFAULT_KEEPALIVE",
    "Hypervisor",
    "HypervisorUnreachable",
    "LibvirtCallFailed",
    "describe",
    "probe",
    "quiet_libvirt",
]

log = logging.getLogger("fence_virt_libvirt")

_T = TypeVar("_T")

#: (seconds between keepalive probes, unanswered probes before the connection is closed):
#: a hung libvirtd frees the calls waiting on it after about 20 s, within the daemon's default
#: 30 s request deadline
DEFAULT_KEEPALIVE = (5, 3)

#: error codes that mean "the connection is gone", whatever isAlive() still says
_LOST_CODES = frozenset(
    {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC}
)


class HypervisorUnreachable(BackendError):
    """A URI cannot be opened (libvirtd down, host unreachable, wrong URI)."""


class LibvirtCallFailed(BackendError):
    """libvirt refused an operation on a working connection."""


def quiet_libvirt() -> None:
    """Stop libvirt from printing every error on stderr: ours carry the message instead."""
    libvirt.registerErrorHandler(_ignore_error, None)


def _ignore_error(_context: object, _error: object) -> None:
    return None


def describe(exc: libvirt.libvirtError) -> str:
    """libvirt's own message for ``exc`` (without the "libvirt: ... error :" prefix)."""
    message = exc.get_error_message() or str(exc)
    return str(message)


def _open(uri: str) -> Any:
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HypervisorUnreachable(f"cannot connect to {uri}: {describe(exc)}") from exc


def probe(uri: str) -> str | None:
    """Open and close ``uri``; ``None`` if that worked, else why not."""
    try:
        conn = _open(uri)
    except HypervisorUnreachable as exc:
        return str(exc)
    conn.close()
    return None


def _alive(conn: Any) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def _lost(conn: Any, exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in _LOST_CODES or not _alive(conn)


def _keep_alive(conn: Any, uri: str, keepalive: tuple[int, int] | None) -> None:
    """Turn on keepalives if this connection can have them (a remote one, with an event loop
    registered in the process); otherwise say so at debug level."""
    if keepalive is None:
        return
    try:
        refused = conn.setKeepAlive(*keepalive) != 0
    except libvirt.libvirtError as exc:
        log.debug("%s: no keepalives: %s", uri, describe(exc))
        return
    if refused:
        log.debug("%s: no keepalives (the driver does not support them)", uri)


class Hypervisor:
    """A URI and its shared connection (opened lazily, replaced when dead).

    ``keepalive``: (interval in seconds, unanswered probes) for every connection opened, or
    ``None`` for none; see the module docstring.
    """

    def __init__(self, uri: str, keepalive: tuple[int, int] | None = DEFAULT_KEEPALIVE) -> None:
        self.uri = uri
        self.keepalive = keepalive
        self._lock = threading.Lock()
        self._conn: Any = None
        self._opened = False

    def connect(self) -> None:
        """Open the connection now; :class:`HypervisorUnreachable` if that fails."""
        self._current()

    def close(self) -> None:
        """Close the connection if one is open; the next :meth:`call` opens a new one."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError as exc:
                log.debug("closing %s: %s", self.uri, describe(exc))

    def call(self, action: Callable[[Any], _T]) -> _T:
        """``action(connection)``; on a lost connection reopen once and run it again.

        Raises :class:`HypervisorUnreachable` if the URI cannot be reopened and
        :class:`LibvirtCallFailed` for any other libvirt error. ``action`` must be safe to
        run twice: the first attempt may have reached the hypervisor before the link broke.
        """
        conn = self._current()
        try:
            return action(conn)
        except libvirt.libvirtError as exc:
            if not _lost(conn, exc):
                raise self._failed(exc) from exc
            log.warning("connection to %s lost (%s); reconnecting", self.uri, describe(exc))
        conn = self._replace(conn)
        try:
            return action(conn)
        except libvirt.libvirtError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: libvirt.libvirtError) -> LibvirtCallFailed:
        return LibvirtCallFailed(f"{self.uri}: {describe(exc)}")

    def _current(self) -> Any:
        with self._lock:
            if self._conn is None or not _alive(self._conn):
                self._reopen()
            return self._conn

    def _replace(self, dead: Any) -> Any:
        with self._lock:
            if self._conn is dead or self._conn is None or not _alive(self._conn):
                self._reopen()
            return self._conn

    def _reopen(self) -> None:
        """Open a new connection (the caller holds the lock); on failure none is kept."""
        self._conn = None
        conn = _open(self.uri)
        _keep_alive(conn, self.uri, self.keepalive)
        self._conn = conn
        if self._opened:
            log.info("reconnected to %s", self.uri)
        self._opened = True
