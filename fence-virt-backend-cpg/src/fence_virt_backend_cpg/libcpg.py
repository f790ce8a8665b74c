"""A small ctypes binding over corosync's ``libcpg.so.4`` and ``libquorum.so.5``.

Why ctypes (ABI mode) and not cffi: the surface is nine functions, three structs and two
callback types whose layouts are fixed by corosync's public headers (``corosync/cpg.h``,
``corotypes.h``); ctypes is in the standard library, needs neither a compiler nor the
``-dev`` headers on the host, and cffi's ABI mode would do the same at run time for one more
dependency. No maintained Python binding exists (ecosystem.md §3.1).

:class:`CpgHandle` is synchronous and does exactly what the C calls do. The asyncio side
(fd on the loop, retries, reconnect) is :mod:`fence_virt_backend_cpg.group`. Callbacks run
inside :meth:`CpgHandle.dispatch` on the calling thread; they must not call back into the
handle (ecosystem.md §3.3).
"""

from __future__ import annotations

import ctypes
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fence_virt.errors import BackendError

__all__ = [
    "CPG_MAX_NAME_LENGTH",
    "CpgAddress",
    "CpgError",
    "CpgHandle",
    "CsError",
    "Reason",
    "library_problem",
    "quorate",
]

log = logging.getLogger("fence_virt_backend_cpg")

#: corosync/cpg.h: a group name is at most 128 bytes
CPG_MAX_NAME_LENGTH = 128
#: corosync/cpg.h cpg_guarantee_t: the only ordering corosync implements (ecosystem.md §3.2)
CPG_TYPE_AGREED = 2
#: corotypes.h cs_dispatch_flags_t: run every pending callback, do not block
CS_DISPATCH_ALL = 2


class CsError(enum.IntEnum):
    """corotypes.h ``cs_error_t`` values this code tells apart."""

    OK = 1
    LIBRARY = 2
    TIMEOUT = 5
    TRY_AGAIN = 6
    INVALID_PARAM = 7
    BAD_HANDLE = 9
    ACCESS = 11
    NOT_EXIST = 12
    EXIST = 14


class Reason(enum.IntEnum):
    """corosync/cpg.h ``cpg_reason_t``: why a process is in a confchg list."""

    JOIN = 1
    LEAVE = 2
    NODEDOWN = 3
    NODEUP = 4
    PROCDOWN = 5


class CpgError(BackendError):
    """A libcpg call failed; ``code`` is its ``cs_error_t``."""

    def __init__(self, call: str, code: int) -> None:
        try:
            name = CsError(code).name
        except ValueError:
            name = str(code)
        super().__init__(f"{call} failed: CS_ERR_{name} ({code})")
        self.call = call
        self.code = code

    @property
    def try_again(self) -> bool:
        return self.code == CsError.TRY_AGAIN

    @property
    def connection_lost(self) -> bool:
        """corosync went away (or the handle is dead): reconnect."""
        return self.code in (CsError.LIBRARY, CsError.BAD_HANDLE)


@dataclass(frozen=True, slots=True)
class CpgAddress:
    """One ``struct cpg_address``: a process in the group."""

    nodeid: int
    pid: int
    reason: int


class _Name(ctypes.Structure):
    _fields_ = (("length", ctypes.c_uint32), ("value", ctypes.c_char * CPG_MAX_NAME_LENGTH))


class _Address(ctypes.Structure):
    _fields_ = (("nodeid", ctypes.c_uint32), ("pid", ctypes.c_uint32), ("reason", ctypes.c_uint32))


class _IOVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


_Handle = ctypes.c_uint64
_DELIVER = ctypes.CFUNCTYPE(
    None,
    _Handle,
    ctypes.POINTER(_Name),
    ctypes.c_uint32,
    ctypes.c_uint32,
    ctypes.c_void_p,
    ctypes.c_size_t,
)
_ADDRESSES = ctypes.POINTER(_Address)
_CONFCHG = ctypes.CFUNCTYPE(
    None,
    _Handle,
    ctypes.POINTER(_Name),
    _ADDRESSES,
    ctypes.c_size_t,
    _ADDRESSES,
    ctypes.c_size_t,
    _ADDRESSES,
    ctypes.c_size_t,
)


class _Callbacks(ctypes.Structure):
    _fields_ = (("deliver", _DELIVER), ("confchg", _CONFCHG))


class _QuorumCallbacks(ctypes.Structure):
    _fields_ = (("notify", ctypes.c_void_p),)


_libraries: dict[str, Any] = {}


def _load(soname: str) -> Any:
    lib = _libraries.get(soname)
    if lib is None:
        try:
            lib = ctypes.CDLL(soname)
        except OSError as exc:
            raise BackendError(f"cannot load {soname} (is corosync installed?): {exc}") from exc
        _libraries[soname] = lib
    return lib


def library_problem() -> str | None:
    """Why libcpg cannot be used here, or ``None``."""
    try:
        _load("libcpg.so.4")
    except BackendError as exc:
        return str(exc)
    return None


def _check(call: str, code: int) -> None:
    if code != CsError.OK:
        raise CpgError(call, code)


#: deliver(nodeid, pid, message bytes)
DeliverFn = Callable[[int, int, bytes], None]
#: confchg(members, left, joined)
ConfchgFn = Callable[[list[CpgAddress], list[CpgAddress], list[CpgAddress]], None]


def _addresses(array: Any, count: int) -> list[CpgAddress]:
    return [CpgAddress(array[i].nodeid, array[i].pid, array[i].reason) for i in range(count)]


class CpgHandle:
    """One ``cpg_handle_t``: initialize, join one group, multicast, dispatch, finalize.

    ``deliver`` and ``confchg`` run inside :meth:`dispatch`; an exception they raise is
    logged and dropped (ctypes would print and lose it otherwise).

    :raises CpgError: from every call whose ``cs_error_t`` is not ``CS_OK``.
    """

    def __init__(self, deliver: DeliverFn, confchg: ConfchgFn) -> None:
        self._lib = _load("libcpg.so.4")
        self._deliver = deliver
        self._confchg = confchg
        # ctypes callback objects must live as long as the handle (ecosystem.md §3.3)
        self._callbacks = _Callbacks(_DELIVER(self._on_deliver), _CONFCHG(self._on_confchg))
        self._handle = _Handle(0)
        self._group: _Name | None = None
        self._open = False

    def initialize(self) -> None:
        """``cpg_initialize``: connect to the local corosync (same network namespace)."""
        _check(
            "cpg_initialize",
            self._lib.cpg_initialize(ctypes.byref(self._handle), ctypes.byref(self._callbacks)),
        )
        self._open = True

    def fd(self) -> int:
        """``cpg_fd_get``: readable when callbacks are pending (or corosync went away)."""
        fd = ctypes.c_int(-1)
        _check("cpg_fd_get", self._lib.cpg_fd_get(self._handle, ctypes.byref(fd)))
        return fd.value

    def local_nodeid(self) -> int:
        """``cpg_local_get``: this host's corosync node id."""
        nodeid = ctypes.c_uint(0)
        _check("cpg_local_get", self._lib.cpg_local_get(self._handle, ctypes.byref(nodeid)))
        return nodeid.value

    def join(self, group: str) -> None:
        """``cpg_join``; :class:`CpgError` with ``try_again`` while corosync syncs."""
        raw = group.encode()
        if len(raw) > CPG_MAX_NAME_LENGTH:
            raise BackendError(f"CPG group name longer than {CPG_MAX_NAME_LENGTH} bytes: {group}")
        name = _Name(len(raw), raw)
        _check("cpg_join", self._lib.cpg_join(self._handle, ctypes.byref(name)))
        self._group = name

    def leave(self) -> None:
        """``cpg_leave`` of the joined group (no-op if none)."""
        name, self._group = self._group, None
        if name is not None:
            _check("cpg_leave", self._lib.cpg_leave(self._handle, ctypes.byref(name)))

    def mcast(self, message: bytes) -> None:
        """``cpg_mcast_joined`` with agreed ordering; delivered to every member, us too.

        :raises CpgError: ``try_again`` under flow control (the caller retries).
        """
        buffer = ctypes.create_string_buffer(message, len(message))
        iov = _IOVec(ctypes.cast(buffer, ctypes.c_void_p), len(message))
        code = self._lib.cpg_mcast_joined(self._handle, CPG_TYPE_AGREED, ctypes.byref(iov), 1)
        _check("cpg_mcast_joined", code)

    def dispatch(self) -> None:
        """``cpg_dispatch(CS_DISPATCH_ALL)``: run the pending callbacks, never block."""
        _check("cpg_dispatch", self._lib.cpg_dispatch(self._handle, CS_DISPATCH_ALL))

    def finalize(self) -> None:
        """``cpg_finalize``; idempotent, errors of a dead connection only logged."""
        if not self._open:
            return
        self._open = False
        self._group = None
        code = self._lib.cpg_finalize(self._handle)
        if code != CsError.OK:
            log.debug("cpg_finalize: %s", CpgError("cpg_finalize", code))

    # callbacks (inside dispatch) -----------------------------------------------------------

    def _on_deliver(
        self, _handle: int, _group: Any, nodeid: int, pid: int, msg: int | None, size: int
    ) -> None:
        try:
            self._deliver(nodeid, pid, ctypes.string_at(msg, size) if msg else b"")
        except Exception:
            log.exception("CPG deliver callback failed")

    def _on_confchg(
        self,
        _handle: int,
        _group: Any,
        members: Any,
        n_members: int,
        left: Any,
        n_left: int,
        joined: Any,
        n_joined: int,
    ) -> None:
        try:
            self._confchg(
                _addresses(members, n_members),
                _addresses(left, n_left),
                _addresses(joined, n_joined),
            )
        except Exception:
            log.exception("CPG confchg callback failed")


def quorate() -> bool:
    """Whether the local corosync's partition has quorum (``quorum_getquorate``).

    Blocking IPC with the local corosync: call it from a worker thread.

    :raises CpgError: corosync cannot be asked (not running, no quorum service).
    """
    lib = _load("libquorum.so.5")
    handle = ctypes.c_uint64(0)
    quorum_type = ctypes.c_uint32(0)
    callbacks = _QuorumCallbacks(None)
    _check(
        "quorum_initialize",
        lib.quorum_initialize(
            ctypes.byref(handle), ctypes.byref(callbacks), ctypes.byref(quorum_type)
        ),
    )
    try:
        value = ctypes.c_int(0)
        _check("quorum_getquorate", lib.quorum_getquorate(handle, ctypes.byref(value)))
        return value.value != 0
    finally:
        lib.quorum_finalize(handle)
