"""A hand-started ``libvirtd`` private to the tests, always stopped by PID.

The daemon runs under ``unshare`` in a mount namespace and an anonymous network namespace
of its own: libvirt's fixed directories (``/etc/libvirt``, ``/run/libvirt``,
``/var/lib/libvirt``, ``/var/cache/libvirt``, ``/var/log/libvirt``) are bind-mounted from
the test's directory, so several daemons coexist, the host's ``/etc/libvirt`` is never
written, and both namespaces vanish with the daemon. The network namespace holds only a
down ``lo``, so libvirt's network driver cannot touch a host interface. Clients reach the
daemon through its UNIX socket, whose path lies in the shared file system::

    test+unix:///default?socket=ROOT/sock/libvirt-sock
    qemu+unix:///system?socket=ROOT/sock/libvirt-sock

Host changes: the empty mount points above are created if missing, and the ``libvirt-qemu``
user and group (the QEMU driver refuses to start without them, whatever qemu.conf says)
are added if missing. QEMU guests write their console log straight to a file
(``stdio_handler = "file"``), so no ``virtlogd`` is needed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = ["LIBVIRTD_TOOLS", "Libvirtd", "ensure_qemu_user", "running_libvirtd"]

#: programs a libvirtd test needs; the fixtures skip (saying which) when one is missing
LIBVIRTD_TOOLS = ("libvirtd", "unshare", "mount", "virsh")
#: directory under the test's root -> the fixed path libvirtd uses as root
_MOUNTS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}
_QEMU_USER = "libvirt-qemu"
#: sun_path is 108 bytes; libvirt adds "libvirt-admin-sock" to the socket directory
_MAX_SOCKET_DIR = 80

_QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
cgroup_controllers = [ ]
namespaces = [ ]
"""


def ensure_qemu_user() -> None:
    """Create the ``libvirt-qemu`` system group and user if this host lacks them."""
    home, shell = "/var/lib/libvirt", "/usr/sbin/nologin"
    for database, command in (
        ("group", ["groupadd", "-r", _QEMU_USER]),
        ("passwd", ["useradd", "-r", "-g", _QEMU_USER, "-d", home, "-s", shell, _QEMU_USER]),
    ):
        if _known(database):
            continue
        # another test session may create it at the same moment: check again afterwards
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if not _known(database):
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def _known(database: str) -> bool:
    lookup = ["getent", database, _QEMU_USER]
    return subprocess.run(lookup, check=False, capture_output=True).returncode == 0


class Libvirtd:
    """One private libvirtd rooted at ``root``; ``start``/``stop``/``kill`` may repeat."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket_dir = root / "sock"
        if len(str(self.socket_dir)) > _MAX_SOCKET_DIR:
            raise ValueError(f"{self.socket_dir} is too long for a UNIX socket path")
        self._daemon: Daemon | None = None
        self._starts = 0
        for name in (*_MOUNTS, "sock"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "libvirtd.conf").write_text(self._libvirtd_conf())
        (root / "etc" / "qemu.conf").write_text(_QEMU_CONF)

    def _libvirtd_conf(self) -> str:
        return (
            f'unix_sock_dir = "{self.socket_dir}"\n'
            'unix_sock_group = "root"\nunix_sock_rw_perms = "0770"\n'
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
            f'log_outputs = "3:file:{self.root}/libvirtd-internal.log"\n'
        )

    @property
    def socket(self) -> Path:
        return self.socket_dir / "libvirt-sock"

    def uri(self, driver: str = "test", path: str = "/default") -> str:
        """A URI through this daemon, e.g. ``uri("qemu", "/system")``."""
        return f"{driver}+unix://{path}?socket={self.socket}"

    @property
    def test_uri(self) -> str:
        return self.uri("test", "/default")

    @property
    def qemu_uri(self) -> str:
        return self.uri("qemu", "/system")

    @property
    def qemu_pid_dir(self) -> Path:
        """Where the QEMU driver writes ``NAME.pid`` for each running guest."""
        return self.root / "run" / "qemu"

    @property
    def pid(self) -> int | None:
        return self._daemon.pid if self._daemon is not None else None

    def _argv(self) -> list[str]:
        binds = " && ".join(
            f"mkdir -p {target} && mount --bind {shlex.quote(str(self.root / name))} {target}"
            for name, target in _MOUNTS.items()
        )
        script = f"{binds} && exec libvirtd -f /etc/libvirt/libvirtd.conf -p " + shlex.quote(
            str(self.root / "libvirtd.pid")
        )
        return ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script]

    def start(self, timeout: float = 30.0) -> None:
        """Start the daemon and return once it accepts connections."""
        if self._daemon is not None and self._daemon.process.poll() is None:
            raise RuntimeError(f"libvirtd in {self.root} is already running")
        ensure_qemu_user()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._starts += 1
        self._daemon = Daemon(self._argv(), self.root / f"libvirtd-{self._starts}.log")
        wait_until(self._ready, timeout, f"libvirtd in {self.root} to accept connections")

    def _ready(self) -> bool:
        assert self._daemon is not None
        if self._daemon.process.poll() is not None:
            raise RuntimeError(
                f"libvirtd exited with {self._daemon.process.returncode}:\n{self.log()}"
            )
        if not _accepts(self.socket):
            return False
        check = ["virsh", "-c", self.test_uri, "version"]
        return subprocess.run(check, check=False, capture_output=True, timeout=30).returncode == 0

    def log(self) -> str:
        return self._daemon.log() if self._daemon is not None else ""

    def pause(self) -> None:
        """SIGSTOP the daemon: a hung libvirtd (its sockets stay open, nothing is answered)."""
        if self._daemon is not None and self._daemon.process.poll() is None:
            os.kill(self._daemon.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused daemon; it answers what was sent meanwhile."""
        if self._daemon is not None and self._daemon.process.poll() is None:
            os.kill(self._daemon.pid, signal.SIGCONT)

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL if it lingers), resuming it first if paused; then kill any guest
        QEMU it left behind."""
        self.resume()
        status = self._daemon.stop() if self._daemon is not None else None
        self._kill_guests()
        return status

    def kill(self) -> None:
        """SIGKILL the daemon (a crash); its guests keep running, as with a real libvirtd."""
        if self._daemon is not None and self._daemon.process.poll() is None:
            os.kill(self._daemon.pid, signal.SIGKILL)
            self._daemon.process.wait(10)

    def _kill_guests(self) -> None:
        for pid_file in self.qemu_pid_dir.glob("*.pid"):
            pid = _read_pid(pid_file)
            if pid is not None and _is_qemu(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_qemu(pid: int) -> bool:
    try:
        return b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextmanager
def running_libvirtd(root: Path) -> Iterator[Libvirtd]:
    """A started :class:`Libvirtd` in ``root``, stopped (and its guests killed) on exit."""
    daemon = Libvirtd(root)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
