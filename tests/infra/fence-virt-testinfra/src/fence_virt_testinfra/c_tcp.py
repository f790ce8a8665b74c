"""The C suite's TCP transport as a test peer: the C fence_virtd with its ``tcp`` listener,
and the C ``fence_virt -T`` agent.

:class:`TcpSetup` writes a ``fence_virt.conf`` for the tcp listener that the C daemon and
ours both read, so a test can run the same client commands against either;
:func:`c_tcp_fence_virtd` runs the C daemon on it inside a namespace the test made
(``fence_virt_testinfra.netns``) and always kills it, by PID. :func:`run_c_fence_virt_tcp`
runs the C agent, always with an explicit ``-T`` (without one it would write to a serial
port or a vmchannel address), inside such a namespace.

For the other direction (our agent against the C listener), start the C daemon with
:func:`c_tcp_fence_virtd` and point the agent at ``setup.address``/``setup.port``.

How the C daemon is run follows the reference recipes (§3c): ``stdbuf -oL``, ``-F -d 99``
so its log says when the socket listens, an own ``-p`` pid file and ``module_path``. Its
tcp listener stores ``auth`` into the hash minimum and always challenges with sha256
(c-suite-spec §3.3), so :class:`TcpSetup` writes ``auth`` only when a test sets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fence_virt_testinfra.c_suite import C_FENCE_VIRTD, c_plugin_dir, kill, run_in
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import Daemon

__all__ = [
    "C_FENCE_VIRT",
    "TCP_READY",
    "TcpSetup",
    "c_tcp_fence_virtd",
    "have_c_tcp",
    "run_c_fence_virt_tcp",
]

#: the C agent under its own name: serial/vmchannel by default, TCP with -T, vsock with -S
C_FENCE_VIRT = "/usr/sbin/fence_virt"
#: what the C tcp listener logs (at -d 99) once its socket listens, per family
TCP_READY = {"ipv4": "ipv4_listen: Success", "ipv6": "ipv6_listen: Success"}


def have_c_tcp() -> bool:
    """The C daemon, its tcp listener plugin, the C fence_virt and stdbuf are installed."""
    plugins = c_plugin_dir()
    return (
        os.access(C_FENCE_VIRTD, os.X_OK)
        and os.access(C_FENCE_VIRT, os.X_OK)
        and plugins is not None
        and Path(plugins, "tcp.so").exists()
        and shutil.which("stdbuf") is not None
    )


@dataclass
class TcpSetup:
    """One tcp listener + backend configuration, written as fence_virt.conf."""

    key_file: Path
    #: libvirt URI of the ``libvirt`` backend
    uri: str = "test:///default"
    address: str = "127.0.0.1"
    port: int = 1229
    family: str = "ipv4"
    hash: str = "sha256"
    #: written only when set (see the module docstring for what C makes of it)
    auth: str | None = None
    #: the backend plugin; anything but ``libvirt`` needs :attr:`backend_block`
    backend: str = "libvirt"
    #: the body of ``backends { }`` for another backend, e.g. ``memory { vm = "vm1"; }``
    backend_block: str | None = None
    #: static-map groups: (group name, requester IPs, VM names/UUIDs)
    groups: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    def config_text(self, module_path: str | None = None) -> str:
        """The configuration; ``module_path`` is where the C daemon finds its plugins."""
        modules = f'\tmodule_path = "{module_path}";\n' if module_path else ""
        head = f'fence_virtd {{\n\tlistener = "tcp";\n\tbackend = "{self.backend}";\n{modules}}}\n'
        values = {
            "key_file": str(self.key_file),
            "address": self.address,
            "port": str(self.port),
            "family": self.family,
            "hash": self.hash,
        }
        if self.auth is not None:
            values["auth"] = self.auth
        lines = "".join(f'\t\t{key} = "{value}";\n' for key, value in values.items())
        listener = f"listeners {{\n\ttcp {{\n{lines}\t}}\n}}\n"
        body = self.backend_block or f'libvirt {{\n\t\turi = "{self.uri}";\n\t}}'
        return head + listener + f"backends {{\n\t{body}\n}}\n" + self._groups_text()

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
def c_tcp_fence_virtd(
    ns: NetNS, workdir: Path, setup: TcpSetup, *, timeout: float = 10.0
) -> Iterator[Daemon]:
    """The C fence_virtd with its tcp listener (foreground, debug log) in ``ns``; returns
    once the socket listens, kills the daemon by PID on exit.

    :raises RuntimeError: the C suite's plugins are missing, or the daemon exited (its log
        in the message).
    :raises TimeoutError: the socket did not listen within ``timeout`` seconds.
    """
    plugins = c_plugin_dir()
    if plugins is None:
        raise RuntimeError("the C fence-virtd plugins are not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    config = setup.write(workdir / "fence_virt.conf", module_path=plugins)
    argv = ns.argv("stdbuf", "-oL", "-eL", C_FENCE_VIRTD, "-F", "-d", "99")
    argv += ["-p", str(workdir / "fence_virtd.pid"), "-f", str(config)]
    daemon = Daemon(argv, workdir / "fence_virtd.log")
    try:
        daemon.wait_for_log(TCP_READY[setup.family], timeout)
        yield daemon
    finally:
        kill(daemon)


def run_c_fence_virt_tcp(
    ns: NetNS,
    key: Path,
    address: str,
    *args: str,
    port: int | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The C ``fence_virt -T ADDRESS [-p PORT] -k KEY ARGS`` inside ``ns``, output as text.

    The agent prints its failures (``Operation failed``, challenge errors) on stdout.
    """
    argv = [C_FENCE_VIRT, "-T", address, "-k", str(key)]
    if port is not None:
        argv += ["-p", str(port)]
    done = run_in(ns, [*argv, *args], timeout=timeout)
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )
