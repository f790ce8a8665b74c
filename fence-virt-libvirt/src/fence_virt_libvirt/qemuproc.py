"""The QEMU process of a running domain on this host: found, tied to its domain, watched until
it has exited.

**Where the pid comes from: libvirt's pid file** (``<pid dir>/<domain name>.pid``, written by
QEMU itself through the ``-pidfile`` option libvirt gives it). It is libvirt's own record: the
QEMU driver reads it to find its guests again after a libvirtd restart, and removes it only
once its clean-up after a destroy is done. It exists whatever the cgroup set-up (cgroups off in
``qemu.conf``, in a container, v1 or v2, with or without systemd-machined), and holds exactly
the QEMU process; the domain's cgroup may hold helper processes too and its path depends on
all of the above. The pid directory follows from the URI (:func:`qemu_pid_dir`).

**How the pid is tied to the domain, so that a stale pid file and a reused pid cannot fool
it:** a pidfd is opened on the pid first (``os.pidfd_open``, Linux ≥ 5.3); then the process's
command line must hold ``-uuid <the domain's UUID>`` (libvirt always passes it); then the
pidfd must still report the process alive. A pidfd names one process for good, and a pid
belongs to one process at a time, so a process that was alive both when the pidfd was opened
and after its command line was read is the process whose command line was read. Without
pidfds, the start time in ``/proc/PID/stat`` is read before and after the command line and
must not change. Anything else -- no pid file, no such process, another command line, a
process gone meanwhile -- means "not sure": the caller falls back to libvirt's own answer.

**When it has exited:** the pidfd turns readable once every thread of the process has ended
(a zombie counts: its memory and files are released before it turns zombie); without pidfds,
``/proc/PID/stat`` is polled every :data:`PROC_POLL` seconds until it is gone, a zombie, or
another process.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import time
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["PROC_POLL", "SYSTEM_PID_DIR", "QemuProcess", "find_qemu", "qemu_pid_dir"]

#: where libvirt's QEMU driver for ``qemu:///system`` keeps ``<name>.pid``
SYSTEM_PID_DIR = Path("/run/libvirt/qemu")
#: seconds between reads of /proc/PID/stat when the kernel has no pidfd (Linux < 5.3)
PROC_POLL = 0.002


def qemu_pid_dir(uri: str, override: Path | None = None) -> Path | None:
    """The directory of libvirt's QEMU pid files for ``uri`` if ``uri`` reaches a QEMU driver
    on this host, else ``None``.

    Local: the ``qemu`` driver with no transport or the ``unix`` transport and no host
    (``qemu:///system``, ``qemu+unix:///system?socket=...``). Anything with a host or another
    transport (``qemu+ssh://b/system``, ``qemu+tcp://...``, ``qemu+ext://...``) and every other
    driver is not. ``override`` replaces the directory of a local URI (a libvirtd in its own
    mount namespace); ``qemu:///session`` uses ``$XDG_RUNTIME_DIR/libvirt/qemu/run`` (as
    libvirt; ``~/.cache/libvirt/qemu/run`` without that variable); another path, such as
    ``qemu:///embed``, only with ``override``.
    """
    parts = urlsplit(uri)
    driver, _, transport = parts.scheme.partition("+")
    if driver != "qemu" or transport not in ("", "unix") or parts.netloc:
        return None
    if override is not None:
        return override
    if parts.path == "/system":
        return SYSTEM_PID_DIR
    if parts.path == "/session":
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime else Path.home() / ".cache"
        return base / "libvirt" / "qemu" / "run"
    return None


class QemuProcess:
    """One running process tied to a domain (see the module docstring); :meth:`close` it."""

    def __init__(self, pid: int, pidfd: int | None, started: str) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._started = started

    def exited(self) -> bool:
        """Whether the process has exited (every thread ended; a zombie has)."""
        return self.wait(0.0)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for the exit; whether it happened."""
        if self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            return bool(poller.poll(max(0.0, timeout) * 1000))
        give_up = time.monotonic() + timeout
        while True:
            if _stat(self.pid, self._started) is None:
                return True
            left = give_up - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(PROC_POLL, left))

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __str__(self) -> str:
        return f"QEMU process {self.pid}"


def find_qemu(pid_dir: Path, name: str, vm_uuid: str) -> QemuProcess | str:
    """The running QEMU process of domain ``name`` (``vm_uuid``), or why it cannot be trusted
    to be that (a sentence for the log)."""
    path = pid_dir / f"{name}.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        return f"no usable pid file {path}: {exc}"
    if pid <= 1:
        return f"pid file {path} holds {pid}"
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        return f"process {pid} from {path} does not exist"
    except (OSError, AttributeError):
        pidfd = None  # no pidfds here: the start time ties the pid instead
    try:
        why = _not_ours(pid, pidfd, vm_uuid)
    except OSError as exc:
        why = f"process {pid} from {path} cannot be read: {exc}"
    if why is None:
        started = _stat(pid, None)
        if started is not None:
            return QemuProcess(pid, pidfd, started)
        why = f"process {pid} ended meanwhile"
    if pidfd is not None:
        os.close(pidfd)
    return why


def _not_ours(pid: int, pidfd: int | None, vm_uuid: str) -> str | None:
    before = _stat(pid, None)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if not _has_uuid(argv, vm_uuid):
        return f"process {pid} is not this domain's QEMU (no -uuid {vm_uuid} on its command line)"
    if pidfd is not None:
        alive = not select.select([pidfd], [], [], 0)[0]
    else:
        alive = before is not None and _stat(pid, before) is not None
    return None if alive else f"process {pid} ended while it was being identified"


def _has_uuid(argv: list[bytes], vm_uuid: str) -> bool:
    wanted = vm_uuid.lower().encode()
    return any(
        flag == b"-uuid" and value.lower() == wanted for flag, value in itertools.pairwise(argv)
    )


def _stat(pid: int, started: str | None) -> str | None:
    """The process's start time (clock ticks since boot, as text) while it runs and, if
    ``started`` is given, is still that process; ``None`` once gone, a zombie, or replaced."""
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/stat").read_text()
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = text[text.rindex(")") + 2 :].split()
        state, start = fields[0], fields[19]
        if state not in ("Z", "X") and started in (None, start):
            return start
    return None
