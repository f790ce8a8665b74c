"""A tiny real QEMU guest (64 MiB, no disk, no NIC), always destroyed and undefined.

The guest boots into SeaBIOS and idles there: enough for libvirt to run, destroy and start a
real QEMU process. KVM is used when ``/dev/kvm`` can be opened, TCG otherwise. Everything
goes through ``virsh``, so core's tests need no libvirt binding.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QEMU_BINARY", "QemuGuest", "kvm_usable", "tiny_domain_xml", "tiny_guest"]

QEMU_BINARY = "qemu-system-x86_64"


def kvm_usable() -> bool:
    """``/dev/kvm`` exists and this process may open it."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def tiny_domain_xml(name: str, *, kvm: bool) -> str:
    return f"""\
<domain type='{"kvm" if kvm else "qemu"}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <memballoon model='none'/>
  </devices>
</domain>
"""


@dataclass(frozen=True)
class QemuGuest:
    """A defined guest on ``uri``; ``qemu_pid`` needs the driver's pid directory."""

    name: str
    uri: str
    kvm: bool
    pid_dir: Path | None = None

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["virsh", "-c", self.uri, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"virsh {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def state(self) -> str:
        """``virsh domstate``: "running", "shut off", "paused", ..."""
        return self.virsh("domstate", self.name).stdout.strip()

    @property
    def uuid(self) -> str:
        return self.virsh("domuuid", self.name).stdout.strip()

    def defined(self) -> bool:
        return self.virsh("domstate", self.name, check=False).returncode == 0

    def qemu_pid(self) -> int | None:
        """PID of the guest's QEMU process while it runs, else ``None``."""
        if self.pid_dir is None:
            raise RuntimeError("this guest's libvirtd pid directory is unknown")
        try:
            pid = int((self.pid_dir / f"{self.name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None


@contextmanager
def tiny_guest(uri: str, name: str, *, pid_dir: Path | None = None) -> Iterator[QemuGuest]:
    """Define and start a tiny guest called ``name``; destroy and undefine it on exit."""
    guest = QemuGuest(name=name, uri=uri, kvm=kvm_usable(), pid_dir=pid_dir)
    with tempfile.NamedTemporaryFile("w", suffix=".xml", prefix="fvt-guest-") as xml:
        xml.write(tiny_domain_xml(name, kvm=guest.kvm))
        xml.flush()
        guest.virsh("define", xml.name)
    try:
        guest.virsh("start", name)
        yield guest
    finally:
        guest.virsh("destroy", name, check=False)
        guest.virsh("undefine", name, check=False)
        if guest.defined():
            raise RuntimeError(f"guest {name} on {uri} could not be undefined")
