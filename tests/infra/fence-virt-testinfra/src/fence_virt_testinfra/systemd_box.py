"""A real systemd booted as PID 1 in namespaces the test makes, for running our unit file.

The test machines' PID 1 is not systemd, so ``systemd-run`` has nothing to talk to. Instead
:func:`booted_systemd` starts ``/usr/lib/systemd/systemd`` (the host's, from Debian's
``systemd`` package) as PID 1 of a new PID namespace under ``unshare`` -- util-linux only,
no ``systemd-nspawn`` -- with:

* a private mount namespace whose root is a tmpfs: the host's ``/usr`` read-only (Debian 12
  has merged ``/usr``: ``/bin``, ``/sbin``, ``/lib``, ``/lib64`` are links into it), a small
  ``/etc`` staged by the test (``passwd``/``group``, an empty ``machine-id``, units), fresh
  ``/run``, ``/tmp``, ``/var``, ``/proc``, a read-only ``/sys``, and ``/dev`` holding only
  the basic character devices; the test adds read-only binds (:class:`Bind`);
* a cgroup (v2) of its own below the caller's, made the root of a new cgroup namespace,
  so systemd manages its units there, as in a container; removed afterwards;
* a new network namespace (only ``lo``, which systemd brings up), UTS and IPC namespaces:
  no traffic leaves it, so multicast clients may run in it (:meth:`SystemdBox.net_argv`).

systemd boots ``fvt-boot.target`` (journald only) with ``container=fence-virt-test`` and
debug logging in its journal. ``systemctl``, ``journalctl`` and the rest run inside through
``nsenter`` (:meth:`SystemdBox.run`); ``systemctl`` reaches PID 1 on its private socket, so
no D-Bus is needed. Leaving the context kills PID 1 (with it the whole PID namespace) by
the PID of the ``unshare`` that holds it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = [
    "BOX_PREFIX",
    "SYSTEMD",
    "SYSTEMD_BOX_TOOLS",
    "Bind",
    "SystemdBox",
    "booted_systemd",
    "relocated_venv",
]

#: the service manager booted (Debian's ``systemd`` package)
SYSTEMD = "/usr/lib/systemd/systemd"
#: programs :func:`booted_systemd` needs on the host
SYSTEMD_BOX_TOOLS = ("unshare", "nsenter", "mount", "pivot_root", SYSTEMD)
#: where :func:`relocated_venv` puts the dev venv inside the box: outside ``/root``,
#: ``/home`` and ``/tmp``, which the unit's ProtectHome= and PrivateTmp= hide
BOX_PREFIX = "/opt/fence-virt"
_BOOT_TARGET = "fvt-boot.target"
_BOOT_TARGET_UNIT = """\
[Unit]
Description=fence-virt test boot: the journal, nothing else
Wants=systemd-journald.service
"""
_counter = itertools.count(1)

#: runs as PID 1 of the new PID namespace, in the new mount namespace; argv: ROOT ETC
#: CONSOLE CGROUP [HOST TARGET]... (read-only binds). After joining its own cgroup it runs
#: again under ``unshare --cgroup`` with STAGE2 first, to mount that cgroup as the box's.
_SETUP = r"""
set -eu
if [ "$1" = STAGE2 ]; then
    R=$2
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
    cd "$R"
    pivot_root . oldroot
    umount -l /oldroot
    rmdir /oldroot
    exec env -i container=fence-virt-test /usr/lib/systemd/systemd \
        --unit=fvt-boot.target --log-level=debug
fi
R=$1 ETC=$2 CONSOLE=$3 CGROUP=$4
shift 4
mount --make-rprivate /
mount -t tmpfs -o mode=755 fvt-root "$R"
mkdir -p "$R"/usr "$R"/proc "$R"/sys "$R"/dev "$R"/run "$R"/tmp "$R"/var/tmp "$R"/var/lib \
    "$R"/var/log "$R"/root "$R"/home "$R"/oldroot "$R"/etc
chmod 1777 "$R/tmp" "$R/var/tmp"
ro_bind() {  # HOST TARGET
    if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")"; : > "$2"; fi
    mount --rbind "$1" "$2"
    mount -o remount,bind,ro "$2"
}
ro_bind /usr "$R/usr"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
ln -s ../run "$R/var/run"
cp -a "$ETC/." "$R/etc/"
mount -t tmpfs -o mode=755,nosuid fvt-dev "$R/dev"
for n in null zero full random urandom tty; do
    : > "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"
done
: > "$R/dev/console"; mount --bind "$CONSOLE" "$R/dev/console"
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev fvt-shm "$R/dev/shm"
mount -t proc proc "$R/proc"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t tmpfs -o mode=755,nosuid,nodev fvt-run "$R/run"
while [ $# -ge 2 ]; do ro_bind "$1" "$R$2"; shift 2; done
# a cgroup of our own below the caller's; the box's cgroup namespace is rooted there
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
mount -t cgroup2 cgroup2 "$R/oldroot"
mkdir "$R/oldroot$own/$CGROUP"
echo $$ > "$R/oldroot$own/$CGROUP/cgroup.procs"
umount "$R/oldroot"
exec unshare --cgroup /bin/bash "$0" STAGE2 "$R"
"""


@dataclass(frozen=True)
class Bind:
    """``host`` (file or directory) mounted read-only at ``target`` inside the box."""

    host: Path
    target: str


@dataclass
class SystemdBox:
    """A booted box; ``pid`` is its PID 1 as the host sees it."""

    pid: int
    workdir: Path

    def argv(self, *command: str) -> list[str]:
        """``command`` inside the box: every namespace of PID 1, its root and directory."""
        return ["nsenter", f"--target={self.pid}", "--all", "--root", "--wd", *command]

    def net_argv(self, *command: str) -> list[str]:
        """``command`` from the host's file system, in the box's network namespace only."""
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", *command]

    def run(
        self, *command: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the box; CalledProcessError (with its output) if it fails."""
        done = subprocess.run(
            self.argv(*command), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr
            )
        return done

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` of ``unit`` as a mapping, e.g. ``{"ActiveState": ...}``."""
        out = self.systemctl("show", *(f"--property={p}" for p in properties), unit).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, *args: str, check: bool = True) -> str:
        """The box's journal of this boot (``journalctl -b ARGS``), ``-o short-monotonic``."""
        argv = ("journalctl", "-b", "-o", "short-monotonic", "--no-pager", *args)
        return self.run(*argv, check=check).stdout

    def read(self, path: str) -> str:
        """A file of the box, ``path`` absolute inside it."""
        return (Path(f"/proc/{self.pid}/root") / path.lstrip("/")).read_text()

    def exists(self, path: str) -> bool:
        return (Path(f"/proc/{self.pid}/root") / path.lstrip("/")).exists()

    def is_running(self) -> bool:
        state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")


def _stage_etc(etc: Path, files: Mapping[str, str | bytes]) -> None:
    etc.mkdir(parents=True)
    for name in ("passwd", "group", "nsswitch.conf"):
        source = Path("/etc") / name
        if source.exists():
            shutil.copy(source, etc / name)
    (etc / "os-release").symlink_to("../usr/lib/os-release")
    (etc / "machine-id").write_text("")  # systemd puts a transient one over it
    (etc / "hostname").write_text("fvt-box\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost fvt-box\n::1\tlocalhost\n")
    units = etc / "systemd" / "system"
    units.mkdir(parents=True)
    (units / _BOOT_TARGET).write_text(_BOOT_TARGET_UNIT)
    for name, content in files.items():
        path = etc / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        path.chmod(0o600)


def _box_pid(holder: Daemon) -> int | None:
    """The child of ``unshare`` (PID 1 of the box), once it runs systemd."""
    try:
        children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split()
        if not children:
            return None
        pid = int(children[0])
        return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd" else None
    except (OSError, ValueError):
        return None


def _own_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:].rstrip("/")
    raise RuntimeError("no cgroup v2 line in /proc/self/cgroup: the box needs cgroup v2")


def _remove_cgroup(name: str, timeout: float = 10) -> None:
    """Remove the box's cgroup tree (empty once PID 1 died), in a mount namespace of its own."""
    mountpoint = Path(tempfile.mkdtemp(prefix="fvt-cgroup-"))
    path = f"{mountpoint}{_own_cgroup()}/{name}"
    script = f"mount -t cgroup2 cgroup2 {mountpoint} && {{ [ ! -d {path} ] ||"
    script += f" find {path} -depth -type d -exec rmdir {{}} +; }}"

    def removed() -> bool:
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode == 0

    try:
        wait_until(removed, timeout, f"the box's cgroup {name} to be removable", interval=0.2)
    finally:
        mountpoint.rmdir()


@contextmanager
def booted_systemd(
    workdir: Path,
    etc_files: Mapping[str, str | bytes] | None = None,
    binds: Sequence[Bind] = (),
    timeout: float = 30,
) -> Iterator[SystemdBox]:
    """Boot systemd in a box (see the module docstring) and yield it once it is running.

    :param workdir: a directory of the test for the staged ``/etc``, the console log and
        the ``unshare`` log.
    :param etc_files: files to add under the box's ``/etc`` (mode 0600), by relative path,
        e.g. ``{"systemd/system/x.service": TEXT}``.
    :param binds: host paths to mount read-only inside the box.
    :param timeout: seconds for systemd to reach ``running`` (or ``degraded``).
    :raises RuntimeError: systemd exited or never came up (with its console and log).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    _stage_etc(workdir / "etc", etc_files or {})
    (workdir / "root").mkdir()
    console = workdir / "console.log"
    console.write_text("")
    script = workdir / "setup.sh"
    script.write_text(_SETUP)
    cgroup = f"fvt-box-{os.getpid()}-{next(_counter)}"
    argv = ["unshare", "--mount", "--pid", "--net", "--uts", "--ipc", "--fork", "--kill-child"]
    argv += ["/bin/bash", str(script), str(workdir / "root"), str(workdir / "etc")]
    argv += [str(console), cgroup]
    for bind in binds:
        argv += [str(bind.host), bind.target]
    holder = Daemon(argv, workdir / "unshare.log")
    box: SystemdBox | None = None
    try:

        def up() -> bool:
            nonlocal box
            if holder.process.poll() is not None:
                raise RuntimeError(
                    f"the box exited with {holder.process.returncode}: {holder.log()}"
                    f"\nconsole:\n{console.read_text()}"
                )
            pid = _box_pid(holder)
            if pid is None:
                return False
            box = SystemdBox(pid, workdir)
            return box.is_running()

        try:
            wait_until(up, timeout, "systemd in the box to be running", interval=0.1)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\nconsole:\n{console.read_text()}") from None
        assert box is not None
        yield box
    finally:
        # SIGKILL to unshare: --kill-child then SIGKILLs PID 1, and the kernel the rest
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder.pid, signal.SIGKILL)
        holder.stop()
        _remove_cgroup(cgroup)


def relocated_venv(staging: Path) -> tuple[list[Bind], dict[str, str]]:
    """The running dev venv, made usable at :data:`BOX_PREFIX` inside a box.

    A venv holds absolute paths (its interpreter link, ``pyvenv.cfg``, the editable
    installs' ``.pth`` files naming the checkout), and here they may lie under ``/root`` or
    ``/tmp``, which the unit's ProtectHome= and PrivateTmp= hide. So ``staging`` gets a venv
    skeleton for ``BOX_PREFIX`` whose ``site-packages`` entries link to the real ones, mounted
    at ``BOX_PREFIX-dev/site``; the checkout goes to ``BOX_PREFIX-dev/src`` (the ``.pth``
    files are rewritten to it), and an interpreter outside ``/usr`` to
    ``BOX_PREFIX-dev/python``. ``bin/`` holds ``python`` and the console scripts
    ``fence_virtd``, ``fence_xvm``, ``fence_virt``.

    :returns: the binds for :func:`booted_systemd` and the environment the interpreter needs
        (``LD_LIBRARY_PATH`` when a relocated interpreter finds ``libpython`` by an absolute
        RUNPATH, as pyenv's builds do), for an ``Environment=`` line.
    """
    dev = f"{BOX_PREFIX}-dev"
    site = Path(sysconfig.get_paths()["purelib"])
    checkout = _checkout_of(site)
    base = Path(sys.base_prefix)
    env: dict[str, str] = {}
    binds = [Bind(staging, BOX_PREFIX), Bind(site, f"{dev}/site"), Bind(checkout, f"{dev}/src")]
    real = Path(os.path.realpath(sys.executable))  # python3.11, not the venv's "python" link
    if real.is_relative_to("/usr"):
        interpreter = str(real)
    else:
        binds.append(Bind(base, f"{dev}/python"))
        interpreter = f"{dev}/python/{real.relative_to(base)}"
        env["LD_LIBRARY_PATH"] = f"{dev}/python/lib"
    staging.mkdir(parents=True)
    (staging / "pyvenv.cfg").write_text(
        f"home = {Path(interpreter).parent}\ninclude-system-site-packages = false\n"
    )
    bin_dir = staging / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(interpreter)
    box_site = staging / site.relative_to(sys.prefix)
    box_site.mkdir(parents=True)
    for entry in site.iterdir():
        if entry.suffix == ".pth":
            text = entry.read_text().replace(str(checkout), f"{dev}/src")
            (box_site / entry.name).write_text(text)
        else:
            (box_site / entry.name).symlink_to(f"{dev}/site/{entry.name}")
    for script in ("fence_virtd", "fence_xvm", "fence_virt"):
        body = (Path(sys.executable).parent / script).read_text().split("\n", 1)[1]
        (bin_dir / script).write_text(f"#!{BOX_PREFIX}/bin/python\n{body}")
        (bin_dir / script).chmod(0o755)
    return binds, env


def _checkout_of(site: Path) -> Path:
    """The checkout the editable installs point into (the venv's parent directory)."""
    venv = Path(sys.prefix)
    if site.is_relative_to(venv):
        return venv.parent
    raise RuntimeError(f"{site} is not inside the venv {venv}")
