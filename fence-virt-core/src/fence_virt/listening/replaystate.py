"""The replay guard's memory on disk, so that restarting fence_virtd reopens no window.

Without it, every signature a listener remembered (:class:`~fence_virt.listening.ReplayGuard`)
is forgotten at a restart, and each request captured before it can be played back once
more (issue 21, A3: 5 of 10 ``fence_xvm -o off -H no-such-vm`` runs exited 0 when captured
status requests of a running VM were replayed after a restart).

Rules:

* **where**: the listener's ``replay_state`` key; by default :func:`default_replay_state`,
  ``/var/lib/fence-virt/replay-<instance>.state`` (``$STATE_DIRECTORY`` instead of
  ``/var/lib/fence-virt`` when set, as systemd's ``StateDirectory=`` sets it). The directory
  is created (mode 0700) if missing. One file per listener instance: a second process that
  finds it locked (``<file>.lock``) keeps its memory in memory only, with a warning;
* **format** (version 1): the 8 bytes ``FVREPLAY``, a little-endian u32 version (1) and u32
  count, then ``count`` records of a 16-byte fingerprint and the time it was received
  (f64, seconds since the epoch). At most :data:`~fence_virt.listening.REPLAY_CAPACITY`
  records, so the file is at most 384 KiB;
* **written atomically**, mode 0600: a new file beside it (``O_EXCL``), ``fsync``, renamed
  over the old one, the directory ``fsync``-ed. After every change, on a thread of its own
  (never on the event loop, never behind backend calls), one write at a time; changes made
  during a write are in the next one. A signature received in the milliseconds before the
  process is killed may be missing; a clean stop writes everything;
* **read at start**: a missing file is an empty memory (the first start); a file that
  cannot be read or is not what this module writes (truncated, another format, not a
  regular file) is one warning naming it and why, and the listener starts with an empty
  memory -- never a crash, never a refused start: fencing matters more than replays;
* a save that fails (disk full, read-only) is a warning, once until a save works again;
  the memory itself keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fence_virt.errors import UserError
from fence_virt.files import read_secret_file
from fence_virt.listening.replay import FINGERPRINT_SIZE, REPLAY_CAPACITY, ReplayGuard

__all__ = [
    "DEFAULT_STATE_DIRECTORY",
    "STATE_FILE_MODE",
    "ReplayStore",
    "StateFileError",
    "default_replay_state",
    "read_state",
    "write_state",
]

#: where the state of fence_virtd lives unless ``$STATE_DIRECTORY`` says otherwise
DEFAULT_STATE_DIRECTORY = Path("/var/lib/fence-virt")
#: set by systemd for a unit with ``StateDirectory=`` (the first of several, colon-separated)
_STATE_DIRECTORY_VARIABLE = "STATE_DIRECTORY"
STATE_FILE_MODE = 0o600
_DIRECTORY_MODE = 0o700

_MAGIC = b"FVREPLAY"
_VERSION = 1
_HEADER = struct.Struct("<8sII")
_RECORD = struct.Struct(f"<{FINGERPRINT_SIZE}sd")
MAX_STATE_SIZE = _HEADER.size + REPLAY_CAPACITY * _RECORD.size


class StateFileError(UserError):
    """The state file exists but cannot be used; the message names it and says why."""


def default_replay_state(instance: str) -> Path:
    """``$STATE_DIRECTORY/replay-<instance>.state``, else under :data:`DEFAULT_STATE_DIRECTORY`."""
    configured = os.environ.get(_STATE_DIRECTORY_VARIABLE, "").split(":")[0]
    directory = Path(configured) if configured else DEFAULT_STATE_DIRECTORY
    return directory / f"replay-{instance}.state"


def read_state(path: Path) -> list[tuple[bytes, float]]:
    """The records of a state file; ``[]`` if there is none.

    The mode is tightened to 0600 (with a warning) as for key files, and a FIFO or a
    directory is refused without blocking (:func:`fence_virt.files.read_secret_file`).

    :raises StateFileError: unreadable, not a regular file, or not a version-1 state file.
    """
    if not os.path.lexists(path):
        return []
    try:
        data = read_secret_file(path, what="replay state file", max_bytes=MAX_STATE_SIZE + 1)
    except UserError as exc:
        raise StateFileError(str(exc)) from None
    if len(data) < _HEADER.size:
        raise StateFileError(f"replay state file {path}: cut short ({len(data)} bytes)")
    magic, version, count = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise StateFileError(f"replay state file {path}: not a version-{_VERSION} state file")
    if count > REPLAY_CAPACITY or len(data) != _HEADER.size + count * _RECORD.size:
        raise StateFileError(
            f"replay state file {path}: {len(data)} bytes do not hold the {count} records "
            "its header announces"
        )
    return list(_RECORD.iter_unpack(data[_HEADER.size :]))


def write_state(path: Path, entries: Sequence[tuple[bytes, float]]) -> None:
    """Replace the state file atomically with ``entries`` (the newest
    :data:`~fence_virt.listening.REPLAY_CAPACITY`), mode 0600; creates the directory.

    :raises OSError: the directory or the file cannot be written.
    """
    kept = entries[-REPLAY_CAPACITY:]
    data = _HEADER.pack(_MAGIC, _VERSION, len(kept)) + b"".join(
        _RECORD.pack(fingerprint, received) for fingerprint, received in kept
    )
    path.parent.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a process of ours that died in the middle of a save
    fd = os.open(temporary, flags, STATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReplayStore:
    """Keeps one :class:`~fence_virt.listening.ReplayGuard`'s memory in a state file.

    Use it on the event loop that uses the guard (a listener's ``start`` and ``stop``)::

        store = ReplayStore(guard, settings.state_file, log)
        store.open()          # lock, read, fill the guard; warnings only, never raises
        ...                   # every guard.remember() schedules a save
        await store.close()   # the last save, then unlock
    """

    def __init__(self, guard: ReplayGuard, path: Path, log: logging.Logger) -> None:
        self.guard = guard
        self.path = path
        self.log = log
        #: False when this process does not keep the file (locked by another, or no lock
        #: could be taken): the guard then works in memory only
        self.active = False
        self._lock_fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._saving: asyncio.Task[None] | None = None
        self._dirty = False
        self._failing = False

    def open(self) -> None:
        """Lock the file, load it into the guard and save after every change from now on."""
        if not self._lock():
            return
        self.active = True
        try:
            entries = read_state(self.path)
        except StateFileError as exc:
            self.log.warning("%s: starting with an empty replay memory", exc)
            entries = []
        if entries:
            taken = self.guard.restore(entries)
            self.log.info("replay memory: %d signatures loaded from %s", taken, self.path)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="replay-state")
        self.guard.on_change = self._changed

    def _lock(self) -> bool:
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            where = exc.filename or lock
            self._memory_only(f"{where}: {exc.strerror or exc}")
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self._memory_only(
                "the file is in use by another process: set replay_state to a file of this "
                "listener's own"
            )
            return False
        self._lock_fd = fd
        return True

    def _memory_only(self, reason: str) -> None:
        self.log.warning(
            "replay state file %s: %s; replays stay refused only until a restart",
            self.path,
            reason,
        )

    def _changed(self) -> None:
        self._dirty = True
        if self._saving is None or self._saving.done():
            self._saving = asyncio.get_running_loop().create_task(self._save_while_dirty())

    async def _save_while_dirty(self) -> None:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        while self._dirty:
            self._dirty = False
            entries = self.guard.entries()
            try:
                await loop.run_in_executor(self._executor, write_state, self.path, entries)
            except Exception as exc:  # noqa: BLE001 - never lose the task: log, retry later
                if not self._failing:
                    self._failing = True
                    self.log.warning(
                        "cannot save the replay memory to %s: %s (retried at the next request)",
                        self.path,
                        getattr(exc, "strerror", None) or exc,
                    )
            else:
                if self._failing:
                    self._failing = False
                    self.log.warning("replay memory saved to %s again", self.path)

    async def close(self) -> None:
        """Write what is not saved yet, stop saving, unlock; safe to call twice."""
        if not self.active:
            return
        self.active = False
        self.guard.on_change = None
        if self._saving is not None:
            await asyncio.gather(self._saving, return_exceptions=True)
        self._dirty = True
        self._saving = None
        await self._save_while_dirty()
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
