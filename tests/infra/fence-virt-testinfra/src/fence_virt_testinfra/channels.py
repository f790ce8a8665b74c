"""Guests on serial and vmchannel sockets, for the tests of those listeners (recipes §3a/§3b).

* :func:`socket_domain_xml`: a domain for libvirt's test driver (or QEMU) with ``<serial>``
  and ``<channel>`` devices whose UNIX sockets are in ``mode='bind'``;
* :func:`socat_pty`: socat standing in for QEMU and the guest's ttyS1 -- it listens on the
  domain's socket and, once fence_virtd connected, gives the guest's end as a PTY (a link
  at ``tty``) for the C ``fence_virt -D``;
* :func:`socat_tcp`: the same for a vmchannel guestfwd: TCP on 127.0.0.1 inside a test
  namespace, for ``fence_virt -A 127.0.0.1 -p PORT``;
* :func:`run_c_fence_virt`: the C agent, refused unless an explicit ``-D``, ``-A`` or ``-T``
  target is given (without one it connects to 10.0.2.179);
* :class:`SerialSetup` and :func:`c_fence_virtd_serial`: the C daemon's serial listener.

Every process is stopped by PID when its context ends, also when the test failed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fence_virt_testinfra.c_suite import C_FENCE_VIRTD, c_plugin_dir, kill
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = [
    "C_FENCE_VIRT",
    "SOCAT",
    "SerialSetup",
    "c_fence_virtd_serial",
    "run_c_fence_virt",
    "socat_pty",
    "socat_tcp",
    "socket_domain_xml",
]

#: the one C agent binary; this name selects serial/vmchannel/tcp/vsock mode
C_FENCE_VIRT = "/usr/sbin/fence_virt"
SOCAT = "socat"
#: options that give the C fence_virt an explicit target (never its 10.0.2.179 default)
_TARGET_OPTIONS = ("-D", "-A", "-T")


def socket_domain_xml(
    name: str,
    uuid: str,
    *,
    serial: Sequence[Path | str] = (),
    channels: Sequence[Path | str] = (),
    domain_type: str = "test",
    extra_devices: str = "",
) -> str:
    """A domain whose ``serial`` and ``channel`` devices are UNIX sockets in bind mode
    (guestfwd channels at C's default 10.0.2.179:1229, as ``fence_virt.conf(5)`` shows)."""
    devices = [
        f"<serial type='unix'><source mode='bind' path='{path}'/><target port='{number}'/></serial>"
        for number, path in enumerate(serial, start=1)
    ]
    devices += [
        f"<channel type='unix'><source mode='bind' path='{path}'/>"
        "<target type='guestfwd' address='10.0.2.179' port='1229'/></channel>"
        for path in channels
    ]
    return (
        f"<domain type='{domain_type}'><name>{name}</name><uuid>{uuid}</uuid>"
        "<memory>65536</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os>"
        f"<devices>{''.join(devices)}{extra_devices}</devices></domain>"
    )


@contextmanager
def socat_pty(socket: Path, tty: Path, log: Path) -> Iterator[Daemon]:
    """socat listening on ``socket`` (QEMU's side); after the host connected, the guest's
    end of the line is a PTY linked at ``tty`` (raw, no echo). One connection only: when the
    host closes it, socat exits. Killed by PID on exit."""
    argv = [SOCAT, "-d", "-d", f"UNIX-LISTEN:{socket}", f"PTY,link={tty},raw,echo=0"]
    daemon = Daemon(argv, log)
    try:
        wait_until(socket.exists, 10, f"socat to listen on {socket}")
        yield daemon
    finally:
        daemon.stop()


@contextmanager
def socat_tcp(ns: NetNS, socket: Path, port: int, log: Path) -> Iterator[Daemon]:
    """socat listening on ``socket`` and, once the host connected, on TCP
    127.0.0.1:``port`` inside ``ns`` (a vmchannel guestfwd as the guest sees it). One
    session: it exits when either side closes. Killed by PID on exit."""
    argv = ns.argv(
        SOCAT,
        "-d",
        "-d",
        f"UNIX-LISTEN:{socket}",
        f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
    )
    daemon = Daemon(argv, log)
    try:
        wait_until(socket.exists, 10, f"socat to listen on {socket}")
        yield daemon
    finally:
        daemon.stop()


def run_c_fence_virt(
    *args: str, ns: NetNS | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The C ``fence_virt ARGS`` (inside ``ns`` if given), output as text.

    :raises ValueError: no ``-D``, ``-A`` or ``-T`` among ``args``: without one the agent
        would connect to 10.0.2.179 (recipes, safety hazards).
    """
    if not any(arg.startswith(_TARGET_OPTIONS) for arg in args):
        raise ValueError(f"fence_virt needs an explicit -D/-A/-T target: {args}")
    argv = [C_FENCE_VIRT, *args]
    env = dict(os.environ)
    env.pop("POSIXLY_CORRECT", None)
    return subprocess.run(
        ns.argv(*argv) if ns is not None else argv,
        input="",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@dataclass
class SerialSetup:
    """A ``fence_virt.conf`` with the serial listener (C's block) and the libvirt backend."""

    #: the listener's libvirt URI (where it discovers domains)
    uri: str
    #: the directory of the sockets, or None for C's "any path"
    path: Path | None
    #: the backend's URI (defaults to ``uri``)
    backend_uri: str | None = None
    mode: str = "serial"
    #: C's daemon refuses to start unless this file exists
    key_file: Path | None = None
    #: the listener's block name; ``None``: C's one ``serial`` block
    instance: str | None = None
    #: top-level static map: (group name, requester UUIDs, VM names/UUIDs)
    groups: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    def config_text(self, module_path: str | None = None) -> str:
        """The configuration; ``module_path`` is where the C daemon finds its plugins."""
        modules = f'\tmodule_path = "{module_path}";\n' if module_path else ""
        block = [f'\t\turi = "{self.uri}";', f'\t\tmode = "{self.mode}";']
        if self.path is not None:
            block.append(f'\t\tpath = "{self.path}";')
        if self.key_file is not None:
            block.append(f'\t\tkey_file = "{self.key_file}";')
        return (
            f'fence_virtd {{\n\tlistener = "serial";\n\tbackend = "libvirt";\n{modules}}}\n'
            "listeners {\n\tserial {\n" + "\n".join(block) + "\n\t}\n}\n"
            f'backends {{\n\tlibvirt {{\n\t\turi = "{self.backend_uri or self.uri}";\n\t}}\n}}\n'
            + self._groups_text()
        )

    def _groups_text(self) -> str:
        if not self.groups:
            return ""
        blocks = []
        for name, requesters, vms in self.groups:
            lines = [f'\t\tname = "{name}";']
            lines += [f'\t\tuuid = "{value}";' for value in (*requesters, *vms)]
            blocks.append("\tgroup {\n" + "\n".join(lines) + "\n\t}\n")
        return "groups {\n" + "".join(blocks) + "}\n"

    def write(self, path: Path, module_path: str | None = None) -> Path:
        """Write the config, mode 0600 (fence_virtd would chmod it and say so)."""
        path.write_text(self.config_text(module_path))
        path.chmod(0o600)
        return path


#: what the C serial listener logs (at -d 5 and up) just before it reads the running domains
#: and subscribes to their events (``event_thread`` in server/virt-serial.c)
C_SERIAL_READY = "Registering domain event cbs"
#: seconds from that line until the dispatch loop surely runs: ``serial_init`` sleeps 1 s
#: after starting the event thread, and the events are subscribed meanwhile
_C_SUBSCRIBE_GRACE = 1.2


@contextmanager
def c_fence_virtd_serial(workdir: Path, setup: SerialSetup) -> Iterator[Daemon]:
    """The C fence_virtd (foreground, ``-d 99``) with the serial listener; killed by PID on
    exit. Returns once its event thread has read the running domains and subscribed, and its
    dispatch loop runs."""
    plugins = c_plugin_dir()
    if plugins is None:
        raise RuntimeError("the C fence-virtd plugins are not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    config = setup.write(workdir / "fence_virt.conf", module_path=plugins)
    argv = ["stdbuf", "-oL", "-eL", C_FENCE_VIRTD, "-F", "-d", "99"]
    argv += ["-p", str(workdir / "fence_virtd.pid"), "-f", str(config)]
    daemon = Daemon(argv, workdir / "fence_virtd.log")
    try:
        daemon.wait_for_log(C_SERIAL_READY)
        time.sleep(_C_SUBSCRIBE_GRACE)
        yield daemon
    finally:
        kill(daemon)
