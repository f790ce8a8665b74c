"""Whether a domain is fenced once its QEMU process has exited: what in its live XML may keep
acting for the VM afterwards.

The argument, and why each device below is excluded, is in ``docs/fencing-point.md``. In
short: everything QEMU does itself (vCPUs, emulated and virtio devices, local disk I/O through
its own threads, linux-aio or io_uring, vhost-net kernel workers) has ended or completed when
its last thread has; what another process or a device does on the VM's behalf, and writes
queued in a host TCP connection QEMU opened (the kernel keeps sending those), has not.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

__all__ = ["outliving"]

#: <interface type=...> handled outside QEMU or through a host TCP/IP stack QEMU drives
_INTERFACES = {
    "vhostuser": "a vhost-user interface (another process moves its packets)",
    "vdpa": "a vDPA interface (the device moves its packets)",
    "hostdev": "a passed-through network device (it does DMA on its own)",
    "user": "user-mode networking (the guest's TCP connections are host sockets)",
}
#: <disk type=...> handled outside QEMU or over host TCP connections QEMU opened
_DISKS = {
    "network": "a network disk (QEMU's own connection to the storage; queued writes are "
    "still sent)",
    "vhostuser": "a vhost-user disk (another process does its I/O)",
    "nvme": "an NVMe disk driven from QEMU through VFIO",
}
#: lifecycle actions with which libvirt itself may start a new QEMU process for the domain
_RESTARTS = ("restart", "rename-restart", "coredump-restart")


def outliving(live_xml: str) -> list[str]:
    """What in ``live_xml`` (a running domain's XML) may go on acting for the VM after its
    QEMU process has exited, one phrase each; empty when that exit fences the VM. XML that
    cannot be parsed answers ``["unreadable domain XML"]``."""
    try:
        root = ET.fromstring(live_xml)  # noqa: S314 - libvirt's own XML
    except ET.ParseError:
        return ["unreadable domain XML"]
    found: list[str] = []
    for disk in root.iterfind("devices/disk"):
        found.extend(_disk(disk))
    for interface in root.iterfind("devices/interface"):
        why = _INTERFACES.get(interface.get("type", ""))
        if why is not None:
            found.append(why)
    for hostdev in root.iterfind("devices/hostdev"):
        kind = hostdev.get("type", "?")
        found.append(f"a passed-through host device ({kind}: it acts on its own)")
    for fs in root.iterfind("devices/filesystem"):
        driver = fs.find("driver")
        if driver is not None and driver.get("type") == "virtiofs":
            found.append("a virtiofs filesystem (virtiofsd, another process, does its I/O)")
    if root.find("devices/redirdev") is not None:
        found.append("USB redirection (the device sits on the far end of a connection)")
    for event in ("on_poweroff", "on_crash"):
        action = (root.findtext(event) or "").strip()
        if action in _RESTARTS:
            found.append(f"{event} = {action} (libvirt may start a new QEMU process itself)")
    return found


def _disk(disk: ET.Element) -> list[str]:
    found = []
    why = _DISKS.get(disk.get("type", ""))
    if why is not None:
        found.append(why)
    source = disk.find("source")
    if disk.get("type") == "volume" and source is not None and source.get("mode") == "direct":
        found.append("a storage-pool volume QEMU reaches over the network (mode='direct')")
    if disk.get("device") == "lun":
        found.append("a SCSI passthrough disk (device='lun'; the kernel finishes its commands)")
    return found
