"""A single-node Pacemaker cluster in a :mod:`~fence_virt_testinfra.sandbox`, fencing
guests through fence_xvm (:class:`FenceXvmDevice`) or fence_virt over a serial line or a
vmchannel (:class:`FenceVirtDevice`).

Inside the sandbox, tmpfs hides each directory corosync and Pacemaker write to: ``/run``
(corosync's fixed pid-file lock), ``/dev/shm`` (libqb's IPC buffers), ``/var/lib/pacemaker``
(the CIB) and ``/var/log/pacemaker``. Nothing leaks to the host, and a real cluster on the
host is never touched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fence_virt_testinfra.processes import Daemon, wait_until
from fence_virt_testinfra.sandbox import Sandbox, command_error, sandbox

__all__ = [
    "MULTICAST_ADDRESS",
    "PACEMAKER_TOOLS",
    "Cluster",
    "FenceDevice",
    "FenceEvent",
    "FenceResult",
    "FenceVirtDevice",
    "FenceXvmDevice",
    "running_cluster",
    "start_cluster",
]

#: programs the cluster needs; tests skip (naming them) when one is missing
PACEMAKER_TOOLS = ("corosync", "pacemakerd", "crm_mon", "cibadmin", "stonith_admin", "nsenter")
MULTICAST_ADDRESS = "225.0.0.12"
#: directory hidden by a private tmpfs -> its mode
_PRIVATE_DIRS = {
    "/run": "755",
    "/dev/shm": "1777",
    "/var/lib/pacemaker": "755",
    "/var/log/pacemaker": "755",
}
_CIB_DIRS = ("cib", "pengine", "blackbox", "cores")
_tags = itertools.count(1)


@dataclass(frozen=True)
class FenceEvent:
    """One entry of ``stonith_admin --history``."""

    action: str
    target: str
    client: str
    status: str
    delegate: str | None

    @classmethod
    def from_xml(cls, element: ET.Element) -> FenceEvent:
        return cls(
            action=element.get("action", ""),
            target=element.get("target", ""),
            client=element.get("client", ""),
            status=element.get("status", ""),
            delegate=element.get("delegate"),
        )


@dataclass(frozen=True)
class FenceResult:
    """What Pacemaker reported for one ``stonith_admin`` fencing request."""

    returncode: int
    output: str
    tag: str
    #: the history entry this request left behind (None if the fencer recorded nothing)
    event: FenceEvent | None


#: one attempt per request: a failure must surface, not be retried into success
_ONE_ATTEMPT = {
    f"pcmk_{action}_retries": "1" for action in ("reboot", "off", "monitor", "list", "status")
}


def _host_map(host_map: Mapping[str, str]) -> str:
    return ";".join(f"{node}:{domain}" for node, domain in host_map.items())


def _instance_attributes(device_id: str, attributes: Mapping[str, str]) -> ET.Element:
    element = ET.Element("instance_attributes", id=f"{device_id}-ia")
    for name, value in attributes.items():
        ET.SubElement(element, "nvpair", id=f"{device_id}-{name}", name=name, value=value)
    return element


def _primitive_xml(device_id: str, agent: str, attributes: ET.Element) -> str:
    primitive = ET.Element("primitive", id=device_id, type=agent)
    primitive.set("class", "stonith")
    primitive.append(attributes)
    ops = ET.SubElement(primitive, "operations")
    ET.SubElement(ops, "op", id=f"{device_id}-monitor", name="monitor", interval="60s")
    return ET.tostring(primitive, encoding="unicode")


@dataclass(frozen=True)
class FenceXvmDevice:
    """A ``stonith:fence_xvm`` primitive; ``host_map`` maps cluster node names to domains."""

    id: str
    key_file: Path
    port: int
    host_map: Mapping[str, str]
    multicast_address: str = MULTICAST_ADDRESS
    #: the agent's own timeout (``-t``): seconds to wait for the host's answer
    timeout: int = 10
    #: extra instance attributes
    extra: Mapping[str, str] = field(default_factory=dict)
    #: the fence agent Pacemaker runs
    agent = "fence_xvm"

    def attributes(self) -> dict[str, str]:
        return {
            "multicast_address": self.multicast_address,
            "ipport": str(self.port),
            "key_file": str(self.key_file),
            "timeout": str(self.timeout),
            "pcmk_host_map": _host_map(self.host_map),
            **_ONE_ATTEMPT,
            **self.extra,
        }

    def instance_attributes(self) -> ET.Element:
        return _instance_attributes(self.id, self.attributes())

    def xml(self) -> str:
        return _primitive_xml(self.id, self.agent, self.instance_attributes())


@dataclass(frozen=True)
class FenceVirtDevice:
    """A ``stonith:fence_virt`` primitive on a guest's serial line (``serial_device``) or a
    vmchannel (``channel_address`` and ``port``); ``host_map`` maps node names to domains.

    One of the two targets is required (ValueError otherwise): without one the agent would
    connect to its default vmchannel address, 10.0.2.179.
    """

    id: str
    host_map: Mapping[str, str]
    serial_device: Path | None = None
    channel_address: str | None = None
    port: int | None = None
    #: the agent's own timeout (``-t``): seconds to wait for the host's answer
    timeout: int = 10
    #: extra instance attributes
    extra: Mapping[str, str] = field(default_factory=dict)
    #: the fence agent Pacemaker runs
    agent = "fence_virt"

    def __post_init__(self) -> None:
        if self.serial_device is None and self.channel_address is None:
            raise ValueError("fence_virt needs serial_device or channel_address")

    def attributes(self) -> dict[str, str]:
        target = (
            {"serial_device": str(self.serial_device)}
            if self.serial_device is not None
            else {"channel_address": str(self.channel_address)}
        )
        if self.port is not None:
            target["ipport"] = str(self.port)
        return {
            **target,
            "timeout": str(self.timeout),
            "pcmk_host_map": _host_map(self.host_map),
            **_ONE_ATTEMPT,
            **self.extra,
        }

    def instance_attributes(self) -> ET.Element:
        return _instance_attributes(self.id, self.attributes())

    def xml(self) -> str:
        return _primitive_xml(self.id, self.agent, self.instance_attributes())


#: what :meth:`Cluster.add_device` takes
FenceDevice = FenceXvmDevice | FenceVirtDevice


_STONITH_FLAGS = {"reboot": "--reboot", "off": "--fence", "on": "--unfence"}


class Cluster:
    """Command-line access to the sandboxed single-node cluster."""

    def __init__(self, box: Sandbox, pacemaker: Daemon, log_path: Path) -> None:
        self.box = box
        self.pacemaker = pacemaker
        self.log_path = log_path

    def tool(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A Pacemaker CLI in the sandbox; the caller judges the exit status."""
        return self.box.run(*command, check=False, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def status(self) -> ET.Element:
        result = self.tool("crm_mon", "-1", "--output-as=xml")
        if result.returncode != 0:
            raise command_error(result)
        return ET.fromstring(result.stdout)  # noqa: S314 (our own cluster's output)

    def has_quorate_dc(self) -> bool:
        with contextlib.suppress(RuntimeError, ET.ParseError):
            dc = self.status().find("summary/current_dc")
            return (
                dc is not None and dc.get("present") == "true" and dc.get("with_quorum") == "true"
            )
        return False

    def set_option(self, name: str, value: str) -> None:
        result = self.tool(
            "crm_attribute", "--type", "crm_config", "--name", name, "--update", value
        )
        if result.returncode != 0:
            raise command_error(result)

    def cib(self, *args: str) -> None:
        result = self.tool("cibadmin", *args)
        if result.returncode != 0:
            raise command_error(result)

    def add_device(self, device: FenceDevice, timeout: float = 60) -> None:
        """Create the stonith resource; return once it runs and the fencer has it."""
        self.cib("--create", "-o", "resources", "--xml-text", device.xml())
        self.wait_for_device(device.id, timeout)

    def wait_for_device(self, device_id: str, timeout: float = 60) -> None:
        """Until the resource runs without failures and the fencer has the device."""

        def ready() -> bool:
            registered = self.tool("stonith_admin", "--list-registered").stdout.split()
            return device_id in registered and self.resource_healthy(device_id)

        wait_until(ready, timeout, f"stonith device {device_id} started", interval=0.2)

    def update_device(self, device: FenceDevice) -> None:
        """Replace the device's instance attributes (the fencer re-registers it)."""
        self.cib("--modify", "--xml-text", ET.tostring(device.instance_attributes(), "unicode"))

    def restore_device(self, device: FenceDevice, timeout: float = 60) -> None:
        """Put ``device``'s attributes back, forget its failures, wait until it runs again."""
        self.update_device(device)
        # a start begun with the old attributes may still be running: let it end first
        self.settle(timeout)
        self.cleanup(device.id)
        self.settle(timeout)
        self.wait_for_device(device.id, timeout)

    def settle(self, timeout: float = 60) -> None:
        """Wait until the cluster has no actions in flight (``crm_resource --wait``)."""
        wait = ("crm_resource", "--wait", f"--timeout={int(timeout)}")
        result = self.tool(*wait, timeout=timeout + 10)
        if result.returncode != 0:
            raise command_error(result)

    def remove_device(self, device_id: str) -> None:
        self.cib("--delete", "--xml-text", f'<primitive id="{device_id}"/>')
        wait_until(
            lambda: device_id not in self.tool("stonith_admin", "--list-registered").stdout.split(),
            30,
            f"stonith device {device_id} gone",
            interval=0.2,
        )

    def resource(self, resource_id: str) -> ET.Element | None:
        """The resource's element in ``crm_mon --output-as=xml``."""
        for resource in self.status().iter("resource"):
            if resource.get("id") == resource_id:
                return resource
        return None

    def resource_healthy(self, resource_id: str) -> bool:
        resource = self.resource(resource_id)
        return (
            resource is not None
            and resource.get("role") == "Started"
            and resource.get("failed") == "false"
        )

    def cleanup(self, resource_id: str) -> None:
        """Forget the resource's failures (``crm_resource --cleanup``)."""
        result = self.tool("crm_resource", "--cleanup", "--resource", resource_id)
        if result.returncode != 0:
            raise command_error(result)

    def stonith_admin(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return self.tool("stonith_admin", *args, timeout=timeout)

    def fence(self, action: str, target: str, timeout: int = 60) -> FenceResult:
        """``stonith_admin --reboot/--fence/--unfence TARGET``, with its history entry."""
        tag = f"fvt{os.getpid()}x{next(_tags)}"
        args = (_STONITH_FLAGS[action], target, "--tag", tag, "--timeout", str(timeout))
        result = self.stonith_admin(*args, timeout=timeout + 30)
        events = [e for e in self.history(target) if f".{tag}." in f"{e.client}."]
        return FenceResult(
            result.returncode, result.stdout + result.stderr, tag, events[0] if events else None
        )

    def history(self, target: str = "*") -> list[FenceEvent]:
        """Every recorded fencing event for ``target``, newest first."""
        result = self.stonith_admin("--history", target, "--verbose", "--output-as=xml")
        root = ET.fromstring(result.stdout)  # noqa: S314 (our own cluster's output)
        return [FenceEvent.from_xml(e) for e in root.iter("fence_event")]


_COROSYNC_CONF = """\
totem {{
\tversion: 2
\tcluster_name: {name}
\ttransport: knet
\tcrypto_cipher: none
\tcrypto_hash: none
}}
nodelist {{
\tnode {{
\t\tring0_addr: 127.0.0.1
\t\tname: {node}
\t\tnodeid: 1
\t}}
}}
quorum {{
\tprovider: corosync_votequorum
}}
system {{
\tstate_dir: {state}
}}
logging {{
\tto_stderr: yes
\tto_syslog: no
\ttimestamp: on
}}
"""

# dc-deadtime: how long a starting controller waits for an existing DC before it holds an
# election (default 20 s); a single node never hears from another, so 2 s is enough
_SEED_CIB = """\
<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0"
     admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""


def _private_state(box: Sandbox) -> None:
    for target, mode in _PRIVATE_DIRS.items():
        box.mount_tmpfs(target, mode)
    for name in _CIB_DIRS:
        path = f"/var/lib/pacemaker/{name}"
        box.run("install", "-d", "-o", "hacluster", "-g", "haclient", "-m", "750", path)
    seed = box.workdir / "cib-seed.xml"
    seed.write_text(_SEED_CIB)
    target = "/var/lib/pacemaker/cib/cib.xml"
    box.run("install", "-o", "hacluster", "-g", "haclient", "-m", "600", str(seed), target)


def _start_corosync(box: Sandbox, node: str) -> None:
    state = box.workdir / "corosync-state"
    state.mkdir()
    conf = box.workdir / "corosync.conf"
    conf.write_text(_COROSYNC_CONF.format(name="fvt", node=node, state=state))
    daemon = box.start("corosync", "corosync", "-f", "-c", str(conf))

    def quorate() -> bool:
        if daemon.process.poll() is not None:
            raise RuntimeError(f"corosync exited:\n{daemon.log()}")
        out = box.run("corosync-quorumtool", "-s", check=False).stdout
        return re.search(r"^Quorate:\s+Yes$", out, re.MULTILINE) is not None

    wait_until(quorate, 30, "corosync quorum", interval=0.1)


def start_cluster(box: Sandbox, node: str = "node1", timeout: float = 90) -> Cluster:
    """Corosync + Pacemaker in ``box``; returns once ``node`` is a quorate DC."""
    _private_state(box)
    _start_corosync(box, node)
    log_path = box.workdir / "pacemaker.log"
    env = {"PCMK_logfile": str(log_path), "PCMK_logfacility": "none", "PCMK_stderr": "0"}
    pacemaker = box.start("pacemakerd", "pacemakerd", "-f", env=env)
    cluster = Cluster(box, pacemaker, log_path)

    def elected() -> bool:
        if pacemaker.process.poll() is not None:
            raise RuntimeError(f"pacemakerd exited:\n{pacemaker.log()}\n{cluster.log()[-4000:]}")
        return cluster.has_quorate_dc()

    wait_until(elected, timeout, "a quorate Pacemaker DC", interval=0.25)
    cluster.set_option("stonith-enabled", "true")
    return cluster


@contextmanager
def running_cluster(tag: str = "pcmk") -> Iterator[Cluster]:
    """A sandbox with a running single-node cluster, torn down on exit."""
    with sandbox(tag) as box:
        yield start_cluster(box)
