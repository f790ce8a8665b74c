"""Hosts of an amqp backend cluster for tests and benchmarks: several fence_virtd (ours, amqp
backend) sharing one RabbitMQ, all on the loopback of the broker's namespace, each with a tcp
listener on a port of its own (host N: ``1300 + N``); agents are ``fence_virt -T`` (ours or
C's) run in that namespace.

Each host has its own libvirt test-driver file, so each holds different VMs.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from fence_virt_testinfra.c_suite import run_in
from fence_virt_testinfra.c_tcp import C_FENCE_VIRT, TcpSetup
from fence_virt_testinfra.cpg_hosts import node_xml
from fence_virt_testinfra.ours import FENCE_VIRT, STARTED, fence_virtd_argv
from fence_virt_testinfra.processes import Daemon, wait_until
from fence_virt_testinfra.rabbitmq import Broker

__all__ = ["AmqpHost", "amqp_port"]


def amqp_port(host_id: int) -> int:
    """The tcp listener port of host ``host_id``'s daemon."""
    return 1300 + host_id


@dataclass
class AmqpHost:
    """One host: its daemon, its libvirt file, its configuration."""

    broker: Broker
    host_id: int
    workdir: Path
    key: Path
    exchange: str
    check: Path | None = None
    #: the ``url`` key; ``None``: the broker's guest account on loopback
    url: str | None = None
    #: extra ``key = "value";`` lines for the amqp block
    extra: dict[str, str] = field(default_factory=dict)
    #: our daemon's -d level (None: no debug logging)
    debug: int | None = 4
    daemon: Daemon | None = None

    def config(self, vms: tuple[str, ...]) -> Path:
        xml = self.workdir / f"host{self.host_id}-{'-'.join(vms) or 'none'}.xml"
        xml.write_text(node_xml(*vms))
        settings = {
            "uri": f"test://{xml}",
            "host_id": str(self.host_id),
            "url": self.url or self.broker.url,
            "exchange": self.exchange,
            "request_timeout": "8",
            "refresh_interval": "1",
            "presumed_dead_after": "3",
            **({"fenced_check": str(self.check)} if self.check else {}),
            **self.extra,
        }
        block = "amqp {\n" + "".join(f'\t\t{k} = "{v}";\n' for k, v in settings.items()) + "\t}"
        setup = TcpSetup(
            key_file=self.key,
            uri="unused",
            port=amqp_port(self.host_id),
            backend="amqp",
            backend_block=block,
        )
        path = self.workdir / f"fence_virt-{self.host_id}.conf"
        path.write_text(setup.config_text())
        path.chmod(0o600)
        return path

    def start(self, *vms: str, wait: bool = True) -> Daemon:
        """(Re)start the daemon holding ``vms``; waits for "fence_virtd started" if ``wait``."""
        self.stop()
        pid = self.workdir / f"fvd-{self.host_id}.pid"
        argv = fence_virtd_argv(self.config(vms), pid, debug=self.debug)
        log = self.workdir / f"fvd-{self.host_id}-{time.monotonic_ns()}.log"
        self.daemon = Daemon(self.broker.ns.argv(*argv), log)
        if wait:
            self.daemon.wait_for_log(STARTED, 30)
        return self.daemon

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop(timeout=5)
            self.daemon = None

    def kill(self) -> None:
        """SIGKILL the daemon (its host "dies": nothing is said to anyone)."""
        assert self.daemon is not None
        os.kill(self.daemon.pid, signal.SIGKILL)
        self.daemon.stop(timeout=5)

    def freeze(self, frozen: bool) -> None:
        """SIGSTOP / SIGCONT the daemon (a host that hangs, then resumes)."""
        assert self.daemon is not None
        os.kill(self.daemon.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def log(self) -> str:
        return self.daemon.log() if self.daemon is not None else ""

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        wait_until(lambda: text in self.log(), timeout, f"{text!r} in host {self.host_id}'s log")

    def agent_argv(self, which: str, *args: str) -> list[str]:
        """``fence_virt -T`` to this host's daemon (``which``: "C" or "ours")."""
        program = C_FENCE_VIRT if which == "C" else FENCE_VIRT
        port = str(amqp_port(self.host_id))
        return [program, "-T", "127.0.0.1", "-p", port, "-k", str(self.key), *args]

    def agent(self, which: str, *args: str) -> tuple[int, str]:
        """The agent with ``args`` in the broker's namespace: (exit status, output)."""
        done = run_in(self.broker.ns, self.agent_argv(which, *args), timeout=60)
        return done.returncode, done.stdout.decode(errors="replace")
