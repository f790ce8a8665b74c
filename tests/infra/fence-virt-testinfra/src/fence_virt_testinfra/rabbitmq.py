"""A RabbitMQ broker (Debian's ``rabbitmq-server``) started by a test, in a namespace of its
own, with its own data directory, and stopped by PID afterwards (also when the test failed).

The broker listens on 127.0.0.1 inside the namespace (AMQP on :data:`AMQP_PORT`, AMQPS on
:data:`AMQPS_PORT` when TLS files are given); its Erlang port mapper runs in the same
namespace, so nothing is bound on the host. Clients reach it from processes run in the
namespace (``broker.ns.argv(...)``) or from a :class:`fence_virt_testinfra.setns.NetnsLoop`.

The node is named ``rabbit@localhost`` and keeps its Mnesia database, logs and Erlang cookie
under ``workdir``, so :meth:`Broker.restart` brings back the same users and vhosts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = [
    "AMQPS_PORT",
    "AMQP_PORT",
    "RABBITMQ_BIN",
    "RABBITMQ_TOOLS",
    "Broker",
    "BrokerTls",
    "rabbitmq_broker",
]

#: the scripts themselves, not /usr/sbin's wrapper (it switches to the rabbitmq user and
#: its fixed /var/lib/rabbitmq)
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_TOOLS = (str(RABBITMQ_BIN / "rabbitmq-server"), str(RABBITMQ_BIN / "rabbitmqctl"))
AMQP_PORT = 5672
AMQPS_PORT = 5671
#: seconds a cold broker start may take on a loaded 2-CPU machine
_START_TIMEOUT = 90.0


@dataclass(frozen=True)
class BrokerTls:
    """PEM files for the broker's TLS listener."""

    ca: Path
    cert: Path
    key: Path


class Broker:
    """One ``rabbitmq-server`` in ``ns``; ``ctl(...)`` runs rabbitmqctl against it."""

    def __init__(self, ns: NetNS, workdir: Path, tls: BrokerTls | None = None) -> None:
        self.ns = ns
        self.workdir = workdir
        self.tls = tls
        self.daemon: Daemon | None = None
        self._env = self._environment()
        (workdir / "rabbitmq.conf").write_text(self._config())
        (workdir / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        """The guest account's URL (RabbitMQ lets ``guest`` in from loopback only)."""
        return f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/"

    def _environment(self) -> dict[str, str]:
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(home),
            RABBITMQ_NODENAME="rabbit@localhost",
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.workdir / "rabbit.pid"),
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_LOGS="-",
        )
        return env

    def _config(self) -> str:
        lines = [
            f"listeners.tcp.default = 127.0.0.1:{AMQP_PORT}",
            "loopback_users.guest = true",
            # a test machine's disk is often nearly full; the broker must not block publishers
            "disk_free_limit.absolute = 1",
            "vm_memory_high_watermark.relative = 0.9",
        ]
        if self.tls is not None:
            lines += [
                f"listeners.ssl.default = 127.0.0.1:{AMQPS_PORT}",
                f"ssl_options.cacertfile = {self.tls.ca}",
                f"ssl_options.certfile = {self.tls.cert}",
                f"ssl_options.keyfile = {self.tls.key}",
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        (self.workdir / "rabbitmq-env.conf").write_text("")
        argv = self.ns.argv(str(RABBITMQ_BIN / "rabbitmq-server"))
        log = self.workdir / f"broker-{time.monotonic_ns()}.log"
        self.daemon = Daemon(argv, log, env=self._env)
        self.daemon.wait_for_log("Server startup complete", _START_TIMEOUT)
        wait_until(self._accepting, 20, "the broker's AMQP listener", interval=0.2)

    def _accepting(self) -> bool:
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{AMQP_PORT}"
        return self.ns.run("bash", "-c", probe, check=False).returncode == 0

    def stop(self) -> None:
        """SIGTERM the node (by PID), SIGKILL after 20 s; the Erlang port mapper goes with
        the namespace."""
        daemon, self.daemon = self.daemon, None
        if daemon is not None:
            daemon.stop(timeout=20)
        pidfile = self.workdir / "rabbit.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the node at once (a crash: nothing is flushed)."""
        if self.daemon is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.stop(timeout=5)
            self.daemon = None
        self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.daemon.log() if self.daemon is not None else ""

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl ARGS`` against this node; its output. CalledProcessError on failure."""
        done = subprocess.run(
            self.ns.argv(str(RABBITMQ_BIN / "rabbitmqctl"), "-n", "rabbit@localhost", *args),
            env=self._env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def add_user(self, user: str, password: str, vhost: str) -> None:
        """A user allowed everything in ``vhost`` (made if missing) and nothing elsewhere."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.ctl("add_vhost", vhost)
        self.ctl("add_user", user, password)
        self.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


@contextmanager
def rabbitmq_broker(tls: BrokerTls | None = None, tag: str = "mq") -> Iterator[Broker]:
    """A running broker in a fresh namespace; stopped by PID and its data removed on exit."""
    workdir = Path(tempfile.mkdtemp(prefix=f"fvt-{tag}-"))
    try:
        with netns(tag) as ns:
            broker = Broker(ns, workdir, tls)
            try:
                broker.start()
                yield broker
            finally:
                broker.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
