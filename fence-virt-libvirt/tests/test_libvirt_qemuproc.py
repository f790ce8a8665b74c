"""Finding a domain's QEMU process and seeing it exit, on real processes: which URIs are
local, the identity check (a pid file naming a process without the domain's ``-uuid`` is
refused), exit seen through a pidfd and through /proc (a zombie counts as exited), and what in
a domain's XML may outlive its QEMU process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fence_virt_libvirt import QemuProcess, find_qemu, outliving, qemu_pid_dir
from fence_virt_libvirt.qemuproc import SYSTEM_PID_DIR

UUID = "4252aec2-3bc6-4995-9227-e977e5072abd"
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("qemu:///system", SYSTEM_PID_DIR),
        ("qemu+unix:///system?socket=/x/libvirt-sock", SYSTEM_PID_DIR),
        ("qemu+ssh://host/system", None),
        ("qemu+tcp://host/system", None),
        ("qemu://host/system", None),
        ("qemu+ext:///system?command=/bin/x", None),
        ("qemu+ssh:///system", None),
        ("test:///default", None),
        ("xen:///system", None),
        ("qemu:///embed?root=/x", None),
    ],
)
def test_local_qemu_uris_and_their_pid_directory(uri, expected):
    assert qemu_pid_dir(uri) == expected


def test_session_uri_and_override(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert qemu_pid_dir("qemu:///session") == Path("/run/user/1000/libvirt/qemu/run")
    assert qemu_pid_dir("qemu:///embed?root=/x", tmp_path) == tmp_path
    assert qemu_pid_dir("qemu+unix:///system?socket=/s", tmp_path) == tmp_path
    assert qemu_pid_dir("qemu+ssh://b/system", tmp_path) is None  # never for a remote URI


@pytest.fixture
def spawn():
    """``spawn(*extra_args)`` -> a running Python process (killed and reaped after the test)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([*SLEEPER, *extra])
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def pid_file(tmp_path: Path, pid: int, name: str = "vm1") -> Path:
    (tmp_path / f"{name}.pid").write_text(f"{pid}\n")
    return tmp_path


def found(result: QemuProcess | str) -> QemuProcess:
    assert isinstance(result, QemuProcess), result
    return result


def test_a_process_with_the_domains_uuid_is_found_and_its_exit_seen(tmp_path, spawn):
    process = spawn("-name", "guest=vm1", "-uuid", UUID.upper())
    qemu = found(find_qemu(pid_file(tmp_path, process.pid), "vm1", UUID))
    try:
        assert qemu.pid == process.pid
        assert not qemu.exited()
        assert not qemu.wait(0.05)
        process.kill()  # not reaped yet: a zombie, which has exited
        assert qemu.wait(10)
        assert qemu.exited()
    finally:
        qemu.close()


@pytest.mark.parametrize(
    "args",
    [(), ("-uuid", "11111111-1111-1111-1111-111111111111"), (UUID,), ("-uuid",)],
    ids=["no-uuid", "another-uuid", "uuid-without-flag", "flag-without-uuid"],
)
def test_a_process_without_the_domains_uuid_is_refused(tmp_path, spawn, args):
    process = spawn(*args)
    why = find_qemu(pid_file(tmp_path, process.pid), "vm1", UUID)
    assert (
        why
        == f"process {process.pid} is not this domain's QEMU (no -uuid {UUID} on its command line)"
    )


def test_no_pid_file_no_process_a_zombie(tmp_path, spawn):
    assert str(find_qemu(tmp_path, "vm1", UUID)).startswith(
        f"no usable pid file {tmp_path}/vm1.pid"
    )
    (tmp_path / "vm1.pid").write_text("garbage\n")
    assert str(find_qemu(tmp_path, "vm1", UUID)).startswith("no usable pid file")
    assert find_qemu(pid_file(tmp_path, 1), "vm1", UUID) == f"pid file {tmp_path}/vm1.pid holds 1"

    gone = subprocess.Popen(SLEEPER)
    gone.kill()
    gone.wait()
    why = find_qemu(pid_file(tmp_path, gone.pid), "vm1", UUID)
    assert why == f"process {gone.pid} from {tmp_path}/vm1.pid does not exist"

    zombie = spawn("-uuid", UUID)
    zombie.kill()
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
    why = find_qemu(pid_file(tmp_path, zombie.pid), "vm1", UUID)
    assert isinstance(why, str)  # a zombie has no command line and has exited: never found


def test_without_pidfds_the_start_time_ties_the_pid(tmp_path, spawn, monkeypatch):
    """Test double: this kernel has pidfds; ``os.pidfd_open`` is made to fail as on Linux
    < 5.3 so that the /proc path runs (on the same real processes)."""

    def no_pidfd(_pid: int, _flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    process = spawn("-uuid", UUID)
    qemu = found(find_qemu(pid_file(tmp_path, process.pid), "vm1", UUID))
    assert not qemu.wait(0.05)
    process.kill()  # a zombie until reaped: seen as exited through /proc/PID/stat
    assert qemu.wait(10)
    other = spawn()
    assert isinstance(find_qemu(pid_file(tmp_path, other.pid), "vm1", UUID), str)


TINY = """<domain type='kvm' id='3'><name>vm1</name><uuid>{uuid}</uuid>
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
<devices>{devices}</devices></domain>"""


def domain(devices: str = "", **actions: str) -> str:
    xml = TINY.format(uuid=UUID, devices=devices)
    for event, action in actions.items():
        xml = xml.replace(f"<{event}>destroy</{event}>", f"<{event}>{action}</{event}>")
    return xml


def test_plain_local_devices_are_fenced_by_the_exit():
    devices = (
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' "
        "io='native'/><source file='/var/lib/libvirt/images/a.qcow2'/></disk>"
        "<disk type='block' device='disk'><source dev='/dev/vg/lv'/></disk>"
        "<disk type='volume' device='disk'><source pool='p' volume='v'/></disk>"
        "<interface type='bridge'><source bridge='br0'/><model type='virtio'/>"
        "<driver name='vhost'/></interface><interface type='network'/>"
        "<interface type='direct'/><filesystem type='mount'><driver type='path'/></filesystem>"
        "<memballoon model='none'/><serial type='pty'/>"
    )
    assert outliving(domain(devices)) == []


@pytest.mark.parametrize(
    ("devices", "actions", "phrase"),
    [
        ("<disk type='network' device='disk'><source protocol='rbd'/></disk>", {}, "network disk"),
        ("<disk type='vhostuser' device='disk'/>", {}, "vhost-user disk"),
        ("<disk type='nvme' device='disk'/>", {}, "NVMe disk"),
        ("<disk type='block' device='lun'/>", {}, "SCSI passthrough disk"),
        ("<disk type='volume'><source pool='i' volume='v' mode='direct'/></disk>", {}, "volume"),
        ("<interface type='vhostuser'/>", {}, "vhost-user interface"),
        ("<interface type='vdpa'/>", {}, "vDPA"),
        ("<interface type='user'/>", {}, "user-mode networking"),
        ("<interface type='hostdev'/>", {}, "passed-through network device"),
        ("<hostdev mode='subsystem' type='pci'/>", {}, "passed-through host device (pci"),
        ("<filesystem><driver type='virtiofs'/></filesystem>", {}, "virtiofs"),
        ("<redirdev bus='usb' type='spicevmc'/>", {}, "USB redirection"),
        ("", {"on_crash": "restart"}, "on_crash = restart"),
        ("", {"on_poweroff": "rename-restart"}, "on_poweroff = rename-restart"),
    ],
)
def test_what_may_outlive_the_qemu_process(devices, actions, phrase):
    found_phrases = outliving(domain(devices, **actions))
    assert len(found_phrases) == 1
    assert phrase in found_phrases[0]


def test_unreadable_xml_is_a_doubt():
    assert outliving("<domain>") == ["unreadable domain XML"]
