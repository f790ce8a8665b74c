"""A lab for the serial and vmchannel listeners' tests: guests with sockets on a real
libvirtd, our and the C fence_virtd on them, socat PTYs for the C ``fence_virt -D``.

* :class:`Lab`: domains of libvirt's test driver through a hand-started libvirtd
  (``test+unix:///default``), with serial and channel devices whose sockets lie in a short
  directory of the test; the lab holds a connection, so the daemons under test and the test
  share one test-driver state (recipes §4d); :meth:`Lab.close` destroys what it started.
* :class:`Daemons`: our fence_virtd (inside a test namespace) and the C fence_virtd with its
  serial listener, each stopped by PID.
* :class:`PtyGuests`: socat PTYs on guest sockets (the guest's ttyS1).

This module uses libvirt-python (present wherever fence-virt-libvirt is installed); the
fixtures' own plugin does not import it.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.channels import (
    SerialSetup,
    c_fence_virtd_serial,
    socat_pty,
    socket_domain_xml,
)
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import running_fence_virtd
from fence_virt_testinfra.processes import Daemon, wait_until

__all__ = ["Daemons", "Guest", "Lab", "PtyGuests", "write_config"]

_names = itertools.count(1)


@dataclass
class Guest:
    """A running test-driver domain with sockets."""

    name: str
    uuid: str
    serial: list[Path] = field(default_factory=list)
    channels: list[Path] = field(default_factory=list)


def _quiet(_context: object, _error: object) -> None:
    return None


class Lab:
    """Domains with guest sockets on one libvirtd's test driver (see the module docstring)."""

    def __init__(self, libvirtd: Libvirtd, sock_dir: Path) -> None:
        self.libvirtd = libvirtd
        self.uri = libvirtd.test_uri
        self.dir = sock_dir
        libvirt.registerErrorHandler(_quiet, None)  # errors arrive as exceptions anyway
        self.conn = libvirt.open(self.uri)
        self._started: list[str] = []
        self._defined: list[str] = []

    def reopen(self) -> None:
        """A new connection (after a libvirtd restart); the old one is dropped."""
        with contextlib.suppress(libvirt.libvirtError):
            self.conn.close()
        self.conn = libvirt.open(self.uri)

    def start(
        self, tag: str = "g", *, serial: int = 1, channels: int = 0, directory: Path | None = None
    ) -> Guest:
        """A running (transient) domain with ``serial`` serial and ``channels`` channel
        sockets in ``directory`` (the lab's by default)."""
        where = directory or self.dir
        name = f"{tag}{next(_names)}"
        return self.start_with(
            tag,
            [where / f"{name}-s{n}.sock" for n in range(serial)],
            [where / f"{name}-c{n}.sock" for n in range(channels)],
            name=name,
        )

    def start_with(
        self,
        tag: str,
        serial: list[Path],
        channels: list[Path] | None = None,
        *,
        name: str | None = None,
    ) -> Guest:
        """A running (transient) domain with exactly these socket paths."""
        guest = Guest(name or f"{tag}{next(_names)}", str(uuidlib.uuid4()))
        guest.serial, guest.channels = list(serial), list(channels or ())
        xml = socket_domain_xml(
            guest.name, guest.uuid, serial=guest.serial, channels=guest.channels
        )
        self.conn.createXML(xml, 0)
        self._started.append(guest.name)
        return guest

    def vm(self, tag: str = "vm") -> Guest:
        """A persistent running domain without sockets: a target to fence (on works too)."""
        name = f"{tag}{next(_names)}"
        guest = Guest(name, str(uuidlib.uuid4()))
        self.conn.defineXML(socket_domain_xml(name, guest.uuid)).create()
        self._defined.append(name)
        return guest

    def state(self, name: str) -> int:
        return int(self.conn.lookupByName(name).state()[0])

    def stop(self, name: str) -> None:
        self.conn.lookupByName(name).destroy()

    def close(self) -> None:
        for name in self._started + self._defined:
            with contextlib.suppress(libvirt.libvirtError):
                dom = self.conn.lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                if name in self._defined:
                    dom.undefine()
        with contextlib.suppress(libvirt.libvirtError):
            self.conn.close()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


class Daemons:
    """Our and the C fence_virtd; ``stack`` stops each by PID."""

    def __init__(self, tmp_path: Path, stack: contextlib.ExitStack, ns: NetNS) -> None:
        self._tmp = tmp_path
        self._stack = stack
        self._ns = ns
        self._count = itertools.count(1)
        self.key = write_key(tmp_path / "fence_xvm.key")

    def _workdir(self, tag: str) -> Path:
        workdir = self._tmp / f"{tag}{next(self._count)}"
        workdir.mkdir()
        return workdir

    def ours_text(self, text: str, *, debug: int | None = None) -> Daemon:
        """Our fence_virtd -F on the configuration ``text`` (in the test namespace)."""
        workdir = self._workdir("ours")
        config = write_config(workdir / "fence_virt.conf", text)
        return self._stack.enter_context(
            running_fence_virtd(self._ns, workdir, config, debug=debug)
        )

    def ours(self, setup: SerialSetup, *, debug: int | None = None) -> Daemon:
        return self.ours_text(setup.config_text(), debug=debug)

    def c(self, setup: SerialSetup) -> Daemon:
        """The C fence_virtd with its serial listener (and the key file it insists on)."""
        setup.key_file = setup.key_file or self.key
        return self._stack.enter_context(c_fence_virtd_serial(self._workdir("c"), setup))

    def start(self, which: str, setup: SerialSetup) -> Daemon:
        return self.ours(setup) if which == "ours" else self.c(setup)


class PtyGuests:
    """socat PTYs on guest sockets; each is stopped by PID."""

    def __init__(self, stack: contextlib.ExitStack, logs: Path) -> None:
        self._stack = stack
        self._logs = logs

    def listen(self, socket: Path) -> Path:
        """socat listens on ``socket``; returns where the guest's tty will appear."""
        tty = socket.with_suffix(".tty")
        log = self._logs / f"socat-{socket.stem}.log"
        self._stack.enter_context(socat_pty(socket, tty, log))
        return tty

    @staticmethod
    def wait(tty: Path, timeout: float = 10) -> None:
        """Until a daemon has connected to the socket behind ``tty`` (socat made the PTY)."""
        wait_until(tty.exists, timeout, f"a daemon to connect to the socket behind {tty}")
