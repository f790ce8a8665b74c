"""Hosts of a CPG cluster for tests and benchmarks: corosync in namespaces, a fence_virtd
on each (ours or the C one, both with the cpg backend and a multicast listener on the node's
own ``lo``), and the agents run on a node (multicast stays inside that node's namespace).

Each node has its own libvirt test-driver file, so each holds different VMs; or, with
``Host.libvirt_uri`` set, a libvirt the test shares with the daemon (a hand-started
``libvirtd`` per node, :mod:`fence_virt_testinfra.libvirtd`), whose VMs the test defines,
starts and moves while the daemons run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fence_virt_testinfra.c_suite import C_FENCE_VIRTD, MulticastSetup, c_plugin_dir, run_in
from fence_virt_testinfra.c_tcp import C_FENCE_VIRT, TcpSetup
from fence_virt_testinfra.corosync import CorosyncNode
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_XVM, STARTED, fence_virtd_argv
from fence_virt_testinfra.processes import Daemon, wait_until
from fence_virt_testinfra.testdriver import UUIDS, domain_xml, node_xml, vm_uuid

__all__ = [
    "UUIDS",
    "Host",
    "domain_xml",
    "node_xml",
    "tcp_listening",
    "vm_uuid",
    "write_check",
]


def write_check(workdir: Path) -> Path:
    """The ``fenced_check`` of these tests: "node N is recorded as fenced" is the file
    ``fenced-N`` in ``workdir``, written by the test where a real cluster would consult
    Pacemaker's fencing history (a stand-in for that history; the backend runs it exactly as
    an administrator's check). While a file ``hang-N`` exists the check hangs (30 s) for
    node N, as a fencing history that does not answer."""
    script = workdir / "fenced-check"
    script.write_text(
        f'#!/bin/sh\nif [ -e "{workdir}/hang-$1" ]; then exec sleep 30; fi\n'
        f'test -e "{workdir}/fenced-$1"\n'
    )
    script.chmod(0o755)
    return script


def tcp_listening(ns: NetNS, port: int) -> bool:
    """A socket in state LISTEN (0A) on ``port`` in ``ns``."""
    text = ns.run("cat", "/proc/net/tcp").stdout
    return any(
        f":{port:04X} " in line and line.split()[3] == "0A" for line in text.splitlines()[1:]
    )


@dataclass
class Host:
    """One node of the cluster and the fence_virtd on it."""

    node: CorosyncNode
    key: Path
    check: Path
    daemon: Daemon | None = None
    #: "multicast" (fence_xvm) or "tcp" (fence_virt -T 127.0.0.1, port 1229)
    listener: str = "multicast"
    #: our daemon's -d level (None: no debug logging)
    debug: int | None = 4
    #: the libvirt our daemon uses, shared with the test (None: a test-driver file per start,
    #: holding the VMs given to :meth:`start_ours`)
    libvirt_uri: str | None = None
    #: our daemon's refresh_interval, seconds
    refresh_interval: float = 1.0

    @property
    def nodeid(self) -> int:
        return self.node.nodeid

    def config(self, vms: tuple[str, ...], *, module_path: str | None = None) -> Path:
        """The config file; its VMs are ``vms`` in a new test-driver file, or those of
        :attr:`libvirt_uri` when set (then ``vms`` must be empty)."""
        workdir = self.node.workdir
        if self.libvirt_uri is not None:
            if vms:
                raise ValueError("VMs of a shared libvirt are defined there, not here")
            uri = self.libvirt_uri
        else:
            xml = workdir / f"node{self.nodeid}-{'-'.join(vms) or 'none'}.xml"
            xml.write_text(node_xml(*vms))
            uri = f"test://{xml}"
        setup = (
            TcpSetup(key_file=self.key, uri=uri)
            if self.listener == "tcp"
            else MulticastSetup(key_file=self.key, uri=uri)
        )
        text = setup.config_text(module_path).replace('backend = "libvirt";', 'backend = "cpg";')
        extra = (
            ""
            if module_path
            else f'\t\trequest_timeout = "8";\n\t\tfenced_check = "{self.check}";\n'
            '\t\tfenced_check_timeout = "2";\n'
            f'\t\trefresh_interval = "{self.refresh_interval:g}";\n'
        )
        text = text.replace("\tlibvirt {\n", f"\tcpg {{\n{extra}")
        path = workdir / f"fence_virt-{self.nodeid}.conf"
        path.write_text(text)
        path.chmod(0o600)
        return path

    def start_ours(self, *vms: str) -> Daemon:
        self.stop()
        workdir = self.node.workdir
        argv = fence_virtd_argv(self.config(vms), workdir / "fvd.pid", debug=self.debug)
        self.daemon = Daemon(self.node.argv(*argv), workdir / f"fvd-{time.monotonic_ns()}.log")
        self.daemon.wait_for_log(STARTED, 30)
        return self.daemon

    def start_c(self, *vms: str, attempts: int = 6) -> Daemon:
        """The C daemon; restarted while its CPG dispatch thread died at start-up (the
        upstream race of recipes §5d: a healthy daemon has at least two threads)."""
        plugins = c_plugin_dir()
        assert plugins is not None
        config = self.config(vms, module_path=plugins)
        workdir = self.node.workdir
        for _ in range(attempts):
            self.stop()
            argv = ["stdbuf", "-oL", "-eL", C_FENCE_VIRTD, "-F", "-d", "99"]
            argv += ["-p", str(workdir / "cfvd.pid"), "-f", str(config)]
            self.daemon = Daemon(self.node.argv(*argv), workdir / f"cfvd-{time.monotonic_ns()}.log")
            if self.listener == "tcp":
                wait_until(partial(tcp_listening, self.node.ns, 1229), 15, "C tcp listener")
            else:
                self.daemon.wait_for_log("_recv_sk: success", 15)
            if self._c_healthy():
                return self.daemon
        raise RuntimeError(f"the C fence_virtd never started healthy in {attempts} attempts")

    def _c_healthy(self) -> bool:
        """The dispatch thread came up (two threads, within 5 s: later under load than on a
        quiet machine) and is still there half a second on (the race kills it early)."""
        deadline = time.monotonic() + 5.0
        while self._c_threads() < 2:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        time.sleep(0.5)
        return self._c_threads() >= 2

    def _c_threads(self) -> int:
        assert self.daemon is not None
        # nsenter execs stdbuf, which execs fence_virtd: the PID is the daemon's
        try:
            return len(list(Path(f"/proc/{self.daemon.pid}/task").iterdir()))
        except FileNotFoundError:
            return 0

    def stop(self) -> None:
        if self.daemon is not None:
            # SIGTERM, then SIGKILL by PID after 3 s (a C daemon hit by the race ignores it)
            self.daemon.stop(timeout=3)
            self.daemon = None

    def log(self) -> str:
        return self.daemon.log() if self.daemon is not None else ""

    def agent_argv(self, which: str, *args: str) -> list[str]:
        """The agent's command line: ``fence_xvm`` for multicast, ``fence_virt -T`` for tcp
        (``which``: "C" or "ours")."""
        if self.listener == "tcp":
            program = C_FENCE_VIRT if which == "C" else str(Path(FENCE_XVM).parent / "fence_virt")
            return [program, "-T", "127.0.0.1", "-p", "1229", "-k", str(self.key), *args]
        program = "/usr/sbin/fence_xvm" if which == "C" else FENCE_XVM
        return [program, "-k", str(self.key), "-t", "12", *args]

    def agent(self, which: str, *args: str) -> tuple[int, str]:
        """The agent with ``args`` inside this node's namespace: (exit status, output)."""
        done = run_in(self.node.ns, self.agent_argv(which, *args), timeout=60)
        return done.returncode, done.stdout.decode(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        wait_until(lambda: text in self.log(), timeout, f"{text!r} in node {self.nodeid}'s log")
