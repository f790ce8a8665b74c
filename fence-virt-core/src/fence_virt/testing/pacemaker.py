"""A single-node Pacemaker cluster in a sandbox, fencing guests through fence_xvm.

The sandbox is a network namespace holding only ``lo`` (every multicast fence request stays
in it) plus a private mount namespace kept alive by a holder process. Inside it, tmpfs hides
each directory corosync and Pacemaker write to: ``/run`` (corosync's fixed pid-file lock),
``/dev/shm`` (libqb's IPC buffers), ``/var/lib/pacemaker`` (the CIB) and
``/var/log/pacemaker``. Nothing leaks to the host, and a real cluster on the host is never
touched. The fencer looks for agents in ``/usr/sbin``; :meth:`Sandbox.install_agent` lays an
overlay there, in the sandbox only, so that ``/usr/sbin/fence_xvm`` runs a wrapper of ours
(the C suite's ``/usr/sbin/fence_xvm`` is a symlink to ``fence_virt``: a bind mount would
follow it and hide ``fence_virt`` as well).

Clean-up stops every process by PID (newest first) and deletes the namespace, even when a
test fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from fence_virt.testing.c_suite import MulticastSetup
from fence_virt.testing.netns import NetNS, netns
from fence_virt.testing.processes import Daemon, wait_until

__all__ = [
    "MULTICAST_ADDRESS",
    "PACEMAKER_TOOLS",
    "Cluster",
    "FenceEvent",
    "FenceResult",
    "FenceXvmDevice",
    "Sandbox",
    "missing_daemon_plugins",
    "our_agent",
    "our_fence_virtd",
    "our_fence_virtd_script",
    "running_cluster",
    "sandbox",
    "start_cluster",
    "udp_port_bound",
    "wait_listening",
]

#: programs the cluster needs; tests skip (naming them) when one is missing
PACEMAKER_TOOLS = ("corosync", "pacemakerd", "crm_mon", "cibadmin", "stonith_admin", "nsenter")
MULTICAST_ADDRESS = "225.0.0.12"
#: Pacemaker's fencer runs agents from this directory (PCMK__FENCE_BINDIR)
FENCE_BINDIR = "/usr/sbin"
#: (plugin group, entry point, distribution) our fence_virtd needs for the multicast chain
_DAEMON_PLUGINS = (
    ("fence_virt.listeners", "multicast", "fence-virt-listener-multicast"),
    ("fence_virt.backends", "libvirt", "fence-virt-backend-libvirt"),
)
#: directory hidden by a private tmpfs -> its mode
_PRIVATE_DIRS = {
    "/run": "755",
    "/dev/shm": "1777",  # noqa: S108 (hidden by a private tmpfs, not used as scratch space)
    "/var/lib/pacemaker": "755",
    "/var/log/pacemaker": "755",
}
_CIB_DIRS = ("cib", "pengine", "blackbox", "cores")
_tags = itertools.count(1)


def our_agent() -> Path | None:
    """Our ``fence_xvm`` console script beside this interpreter, if installed."""
    path = Path(sys.executable).parent / "fence_xvm"
    return path if path.exists() else None


def our_fence_virtd_script() -> Path:
    return Path(sys.executable).parent / "fence_virtd"


def missing_daemon_plugins() -> list[str]:
    """Distributions our daemon lacks for multicast + libvirt (entry points not installed)."""
    return [
        f"{dist} (entry point {name!r} in {group})"
        for group, name, dist in _DAEMON_PLUGINS
        if not entry_points(group=group, name=name)
    ]


def _failed(result: subprocess.CompletedProcess[str]) -> RuntimeError:
    return RuntimeError(
        f"{' '.join(result.args)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
    )


class Sandbox:
    """A network namespace plus a private mount namespace; runs commands inside both."""

    def __init__(self, ns: NetNS, workdir: Path) -> None:
        self.ns = ns
        self.workdir = workdir
        self._daemons: list[Daemon] = []
        self._made_dirs: list[Path] = []
        hold = ns.argv("unshare", "--mount", "--propagation", "private", "sleep", "infinity")
        self.holder = Daemon(hold, workdir / "holder.log")
        wait_until(self._holder_ready, 10, "the sandbox's private mount namespace")

    def _holder_ready(self) -> bool:
        if self.holder.process.poll() is not None:
            raise RuntimeError(f"unshare exited: {self.holder.log()}")
        # unshare execs sleep only after it entered the new mount namespace
        return Path(f"/proc/{self.holder.pid}/comm").read_text().strip() == "sleep"

    def argv(self, *command: str) -> list[str]:
        """``command`` run in the sandbox (nsenter execs it: its PID is the caller's child)."""
        # --root/--wd: keep the holder's root and cwd, so this also works inside a chroot
        # (setns into a mount namespace otherwise resets the root to the namespace's own)
        return [
            "nsenter",
            f"--target={self.holder.pid}",
            "--mount",
            "--net",
            "--root",
            "--wd",
            "--",
            *command,
        ]

    def run(
        self, *command: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*command)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise _failed(result)
        return result

    def start(self, name: str, *command: str, env: Mapping[str, str] | None = None) -> Daemon:
        """A daemon in the sandbox, logging to ``workdir/NAME.log``; stopped by :meth:`close`."""
        daemon = Daemon(
            self.argv(*command), self.workdir / f"{name}.log", {**os.environ, **(env or {})}
        )
        self._daemons.append(daemon)
        return daemon

    def mount_tmpfs(self, target: str, mode: str = "755") -> None:
        path = Path(target)
        if not path.exists():
            path.mkdir(parents=True)
            self._made_dirs.append(path)
        self.run("mount", "-t", "tmpfs", "-o", f"mode={mode}", "fvt-sandbox", target)

    def install_agent(self, name: str, program: Path) -> None:
        """Make ``/usr/sbin/NAME`` exec ``program``, for processes in the sandbox only."""
        layer = self.workdir / "agents"
        layer.mkdir(exist_ok=True)
        wrapper = layer / name
        wrapper.write_text(self._wrapper(name, program))
        wrapper.chmod(0o755)
        self.remove_agents()
        options = f"lowerdir={layer}:{FENCE_BINDIR}"
        self.run("mount", "-t", "overlay", "-o", options, "fvt-agents", FENCE_BINDIR)

    def _wrapper(self, name: str, program: Path) -> str:
        """The script; it answers unprivileged callers itself if they cannot run ``program``.

        Pacemaker's controller runs as hacluster and only ever asks an agent for its
        metadata. A checkout whose interpreter lies under a private directory (``/root``)
        is out of its reach, so the wrapper then prints the metadata ``program`` gave root.
        """
        exec_line = f'exec {program} "$@"\n'
        as_hacluster = ["runuser", "-u", "hacluster", "--", str(program), "-o", "metadata"]
        if self.run(*as_hacluster, check=False).returncode == 0:
            return f"#!/bin/sh\n{exec_line}"
        metadata = self.workdir / "agents-metadata" / f"{name}.xml"
        metadata.parent.mkdir(exist_ok=True)
        metadata.write_text(self.run(str(program), "-o", "metadata").stdout)
        metadata.parent.chmod(0o755)
        metadata.chmod(0o644)
        return f'#!/bin/sh\n[ "$(id -u)" -eq 0 ] || exec cat {metadata}\n{exec_line}'

    def remove_agents(self) -> None:
        """Undo :meth:`install_agent`: the sandbox sees the host's ``/usr/sbin`` again."""
        mounts = self.run("findmnt", "-n", "-o", "SOURCE", FENCE_BINDIR, check=False).stdout
        if "fvt-agents" in mounts.split():
            self.run("umount", FENCE_BINDIR)

    def close(self) -> None:
        while self._daemons:
            self._daemons.pop().stop()
        self.holder.stop()
        for path in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                path.rmdir()


@contextmanager
def sandbox(tag: str = "pcmk") -> Iterator[Sandbox]:
    """A fresh :class:`Sandbox`; its work directory is removed unless FVT_KEEP_WORKDIR is set."""
    workdir = Path(tempfile.mkdtemp(prefix=f"fvt-{tag}-"))
    # Pacemaker's daemons run as hacluster and append to the log file kept here
    workdir.chmod(0o755)
    try:
        with netns(tag) as ns:
            box = Sandbox(ns, workdir)
            try:
                yield box
            finally:
                box.close()
    finally:
        if not os.environ.get("FVT_KEEP_WORKDIR"):
            shutil.rmtree(workdir, ignore_errors=True)


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

    def attributes(self) -> dict[str, str]:
        host_map = ";".join(f"{node}:{domain}" for node, domain in self.host_map.items())
        return {
            "multicast_address": self.multicast_address,
            "ipport": str(self.port),
            "key_file": str(self.key_file),
            "timeout": str(self.timeout),
            "pcmk_host_map": host_map,
            # one attempt per request: a failure must surface, not be retried into success
            "pcmk_reboot_retries": "1",
            "pcmk_off_retries": "1",
            "pcmk_monitor_retries": "1",
            "pcmk_list_retries": "1",
            "pcmk_status_retries": "1",
            **self.extra,
        }

    def instance_attributes(self) -> ET.Element:
        attrs = ET.Element("instance_attributes", id=f"{self.id}-ia")
        for name, value in self.attributes().items():
            ET.SubElement(attrs, "nvpair", id=f"{self.id}-{name}", name=name, value=value)
        return attrs

    def xml(self) -> str:
        primitive = ET.Element("primitive", id=self.id, type="fence_xvm")
        primitive.set("class", "stonith")
        primitive.append(self.instance_attributes())
        ops = ET.SubElement(primitive, "operations")
        ET.SubElement(ops, "op", id=f"{self.id}-monitor", name="monitor", interval="60s")
        return ET.tostring(primitive, encoding="unicode")


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
            raise _failed(result)
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
            raise _failed(result)

    def cib(self, *args: str) -> None:
        result = self.tool("cibadmin", *args)
        if result.returncode != 0:
            raise _failed(result)

    def add_device(self, device: FenceXvmDevice, timeout: float = 60) -> None:
        """Create the stonith resource; return once it runs and the fencer has it."""
        self.cib("--create", "-o", "resources", "--xml-text", device.xml())
        self.wait_for_device(device.id, timeout)

    def wait_for_device(self, device_id: str, timeout: float = 60) -> None:
        """Until the resource runs without failures and the fencer has the device."""

        def ready() -> bool:
            registered = self.tool("stonith_admin", "--list-registered").stdout.split()
            return device_id in registered and self.resource_healthy(device_id)

        wait_until(ready, timeout, f"stonith device {device_id} started", interval=0.2)

    def update_device(self, device: FenceXvmDevice) -> None:
        """Replace the device's instance attributes (the fencer re-registers it)."""
        self.cib("--modify", "--xml-text", ET.tostring(device.instance_attributes(), "unicode"))

    def restore_device(self, device: FenceXvmDevice, timeout: float = 60) -> None:
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
            raise _failed(result)

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
            raise _failed(result)

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


def udp_port_bound(ns: NetNS, port: int) -> bool:
    """Some socket in ``ns`` listens on UDP ``port`` (whichever daemon it is)."""
    return bool(ns.run("ss", "-Hlun", f"sport = :{port}").stdout.strip())


def wait_listening(daemon: Daemon, ns: NetNS, port: int, timeout: float = 30) -> None:
    """Until ``daemon`` (a fence_virtd) listens on UDP ``port`` in ``ns``; fail if it exits."""

    def listening() -> bool:
        if daemon.process.poll() is not None:
            status = daemon.process.returncode
            raise RuntimeError(f"fence_virtd exited with {status}:\n{daemon.log()}")
        return udp_port_bound(ns, port)

    wait_until(listening, timeout, f"fence_virtd on UDP port {port}", interval=0.1)


@contextmanager
def our_fence_virtd(
    ns: NetNS, workdir: Path, setup: MulticastSetup, timeout: float = 30
) -> Iterator[Daemon]:
    """Our fence_virtd on ``setup`` in ``ns``, stopped by PID on exit.

    The counterpart of :func:`fence_virt.testing.c_suite.c_fence_virtd`: tests swap daemons.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = setup.write(workdir / "fence_virt.conf")
    pid_file = workdir / "fence_virtd.pid"
    argv = ns.argv(str(our_fence_virtd_script()), "-F", "-f", str(config), "-p", str(pid_file))
    daemon = Daemon(argv, workdir / "fence_virtd.log")
    try:
        wait_listening(daemon, ns, setup.port, timeout)
        yield daemon
    finally:
        daemon.stop()
