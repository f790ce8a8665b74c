"""The C fence-virt suite (Debian's fence-virt / fence-virtd) as a test peer.

Keys, a libvirt test-driver node with several domains, ``fence_virt.conf`` text for the
multicast listener, and :func:`c_fence_virtd`, which runs the C daemon inside a namespace the
test made (``fence_virt_testinfra.netns``) and always kills it, by PID, afterwards. The same
:class:`MulticastSetup` can start our own ``fence_virtd`` (its config format is the C one), so
interoperability tables can run against either daemon.

How the C tools are run follows the project's reference recipes (Debian 12, fence-agents
4.12.1): ``stdbuf -oL`` for a live log, ``-F -d 99`` so the log says when the listener is up,
an own ``-p`` pid file (a second daemon with the default pid file exits silently), and
``module_path`` in the config.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import Daemon

__all__ = [
    "C_FENCE_VIRTD",
    "C_FENCE_XVM",
    "MULTICAST_READY",
    "TEST_NODE_DOMAINS",
    "TEST_NODE_XML",
    "MulticastSetup",
    "c_config_dump",
    "c_fence_virtd",
    "c_plugin_dir",
    "have_c_suite",
    "kill",
    "run_c_fence_xvm",
    "run_in",
    "write_key",
    "write_test_node",
]

C_FENCE_VIRTD = "/usr/sbin/fence_virtd"
#: a symlink named fence_xvm to the one C binary: the name selects multicast mode
C_FENCE_XVM = "/usr/sbin/fence_xvm"
#: what the multicast listener logs (at -d 4 and up) once its socket has joined the group
MULTICAST_READY = "_recv_sk: success"

#: (name, uuid, libvirt state) of TEST_NODE_XML: running, shut off, paused with a long name
TEST_NODE_DOMAINS = (
    ("vm1", "11111111-1111-1111-1111-111111111111", 1),
    ("vm2", "22222222-2222-2222-2222-222222222222", 5),
    ("vm3-with-a-long-name-0123456789", "33333333-3333-3333-3333-333333333333", 3),
)

# The node from the reference recipes (§2, "Custom test-driver XML with several domains");
# <test:runstate> sets the start-up state (5 shut off, 3 paused).
TEST_NODE_XML = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes>
    <sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>
  <memory>8388608</memory>
  <domain type='test'>
    <name>vm1</name><uuid>11111111-1111-1111-1111-111111111111</uuid>
    <memory>1048576</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm2</name><test:runstate>5</test:runstate>
    <uuid>22222222-2222-2222-2222-222222222222</uuid>
    <memory>1048576</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm3-with-a-long-name-0123456789</name>
    <uuid>33333333-3333-3333-3333-333333333333</uuid>
    <memory>1048576</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os>
    <test:runstate>3</test:runstate>
  </domain>
</node>
"""


def have_c_suite() -> bool:
    """The C daemon, the fence_xvm link and the daemon's plugins are installed."""
    return (
        os.access(C_FENCE_VIRTD, os.X_OK)
        and os.access(C_FENCE_XVM, os.X_OK)
        and c_plugin_dir() is not None
        and shutil.which("stdbuf") is not None
    )


def c_plugin_dir() -> str | None:
    """Where Debian installs the C daemon's listener and backend plugins (multiarch path)."""
    found = sorted(glob.glob("/usr/lib/*/fence-virt/multicast.so"))
    return str(Path(found[0]).parent) if found else None


def write_key(path: Path, data: bytes | None = None) -> Path:
    """A key file (mode 0600, as fence_virtd insists); 4096 random bytes by default."""
    path.write_bytes(os.urandom(4096) if data is None else data)
    path.chmod(0o600)
    return path


def write_test_node(path: Path) -> str:
    """Write TEST_NODE_XML and return its libvirt URI (``test:///<path>``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEST_NODE_XML)
    return f"test://{path}"


@dataclass
class MulticastSetup:
    """One multicast listener + libvirt backend configuration, written as fence_virt.conf."""

    key_file: Path
    uri: str = "test:///default"
    port: int = 1229
    family: str = "ipv4"
    interface: str = "lo"
    address: str | None = None
    hash: str = "sha256"
    auth: str = "sha256"
    #: static-map groups: (group name, requester IPs, VM names/UUIDs)
    groups: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    def config_text(self, module_path: str | None = None) -> str:
        """The configuration; ``module_path`` is where the C daemon finds its plugins."""
        address = self.address or ("ff05::3:1" if self.family == "ipv6" else "225.0.0.12")
        modules = f'\tmodule_path = "{module_path}";\n' if module_path else ""
        return (
            f'fence_virtd {{\n\tlistener = "multicast";\n\tbackend = "libvirt";\n{modules}}}\n'
            "listeners {\n\tmulticast {\n"
            f'\t\tkey_file = "{self.key_file}";\n\t\taddress = "{address}";\n'
            f'\t\tinterface = "{self.interface}";\n\t\tport = "{self.port}";\n'
            f'\t\tfamily = "{self.family}";\n\t\thash = "{self.hash}";\n'
            f'\t\tauth = "{self.auth}";\n\t}}\n}}\n'
            f'backends {{\n\tlibvirt {{\n\t\turi = "{self.uri}";\n\t}}\n}}\n' + self._groups_text()
        )

    def _groups_text(self) -> str:
        if not self.groups:
            return ""
        blocks = []
        for name, ips, vms in self.groups:
            lines = [f'\t\tname = "{name}";']
            lines += [f'\t\tip = "{ip}";' for ip in ips]
            lines += [f'\t\tuuid = "{vm}";' for vm in vms]
            blocks.append("\tgroup {\n" + "\n".join(lines) + "\n\t}\n")
        return "groups {\n" + "".join(blocks) + "}\n"

    def write(self, path: Path, module_path: str | None = None) -> Path:
        """Write the config (mode 0600: fence_virtd would chmod it and say so)."""
        path.write_text(self.config_text(module_path))
        path.chmod(0o600)
        return path


@contextmanager
def c_fence_virtd(
    ns: NetNS, workdir: Path, setup: MulticastSetup, *, ready: str = MULTICAST_READY
) -> Iterator[Daemon]:
    """The C fence_virtd (foreground, debug log) in ``ns``, killed by PID on exit."""
    plugins = c_plugin_dir()
    if plugins is None:
        raise RuntimeError("the C fence-virtd plugins are not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    config = setup.write(workdir / "fence_virt.conf", module_path=plugins)
    argv = ns.argv("stdbuf", "-oL", "-eL", C_FENCE_VIRTD, "-F", "-d", "99")
    argv += ["-p", str(workdir / "fence_virtd.pid"), "-f", str(config)]
    daemon = Daemon(argv, workdir / "fence_virtd.log")
    try:
        daemon.wait_for_log(ready)
        yield daemon
    finally:
        kill(daemon)


def kill(daemon: Daemon) -> None:
    """SIGKILL by PID: the C daemon needs ~1 s to notice SIGTERM and keeps no state."""
    if daemon.process.poll() is None:
        os.kill(daemon.pid, signal.SIGKILL)
    try:
        daemon.process.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a kill -9 that did not land
        raise RuntimeError(f"fence_virtd {daemon.pid} survived SIGKILL") from None
    daemon.stop()


def run_in(
    ns: NetNS, argv: list[str], stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Run an agent inside ``ns``: bytes out, empty stdin unless given, no POSIXLY_CORRECT."""
    env = dict(os.environ)
    env.pop("POSIXLY_CORRECT", None)
    return subprocess.run(
        ns.argv(*argv),
        input=b"" if stdin is None else stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def run_c_fence_xvm(
    ns: NetNS, key: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The C ``fence_xvm -k KEY ARGS`` inside ``ns`` (never outside: it multicasts on every
    interface it has); its output decoded as text."""
    done = run_in(ns, [C_FENCE_XVM, "-k", str(key), *args], timeout=timeout)
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def c_config_dump(text: str, workdir: Path, timeout: float = 20) -> str:
    """The configuration as the C fence_virtd parsed it: its ``-F -d 5`` dump of ``text``
    (C's order: children reversed, c-suite-spec §5.3), with no plugin ever loaded.

    A last ``fence_virtd`` block (C reads the last one) names listener and backend ``none``
    and an empty ``module_path``, so the daemon dumps the tree and exits 1 with ``No plugins
    found``; that block is in the dump too. RuntimeError with the daemon's output when it
    does not parse the file or ends any other way.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    empty = workdir / "no-plugins"
    empty.mkdir(exist_ok=True)
    config = workdir / "c-dump.conf"
    config.write_text(
        f'{text}\nfence_virtd {{\n\tlistener = "none";\n\tbackend = "none";\n'
        f'\tmodule_path = "{empty}";\n\tdebug = "5";\n}}\n'
    )
    config.chmod(0o600)
    pid_file = workdir / "c-dump.pid"
    done = subprocess.run(
        [C_FENCE_VIRTD, "-F", "-d", "5", "-f", str(config), "-p", str(pid_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("Debugging threshold")]
    ends = [i for i, line in enumerate(lines) if line.startswith("Backend plugin: ")]
    if done.returncode != 1 or "No plugins found" not in done.stdout or not starts or not ends:
        raise RuntimeError(f"C fence_virtd on {config}: exit {done.returncode}\n{done.stdout}")
    return "".join(lines[starts[0] + 1 : ends[0]])
