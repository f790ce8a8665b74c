"""The C fence_virtd with its tcp listener, and the C ``fence_virt`` agent, as test peers.

The counterpart of :mod:`fence_virt_testinfra.c_suite` for ``fence_virt -T`` (the
reference recipes, "TCP listener"): :class:`TcpSetup` writes a ``fence_virt.conf`` for the
tcp listener and the libvirt backend, :func:`c_fence_virtd_tcp` runs the C daemon on it
inside a namespace the test made and kills it by PID afterwards.

Safety: the C ``fence_virt`` without ``-T`` connects to 10.0.2.179 (vmchannel) or writes to
a serial device, and with ``-S`` it connects over vsock, which leaves this machine. Run it
only through :func:`run_c_fence_virt`, which refuses argv without an explicit target.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fence_virt_testinfra.c_suite import MulticastSetup, c_fence_virtd, have_c_suite, run_in
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.processes import Daemon

__all__ = [
    "C_FENCE_VIRT",
    "TCP_READY",
    "TcpSetup",
    "blackhole",
    "c_fence_virtd_tcp",
    "have_c_fence_virt",
    "run_c_fence_virt",
    "run_c_fence_virt_tcp",
]

#: the one C agent binary; started under this name it is fence_virt (serial/TCP/vsock modes)
C_FENCE_VIRT = "/usr/sbin/fence_virt"
#: what the C tcp listener logs (at -d 4 and up) once it listens: ipv4_listen / ipv6_listen
TCP_READY = "_listen: Success"


def have_c_fence_virt() -> bool:
    """The C suite (daemon and plugins) and the C fence_virt agent are installed."""
    return have_c_suite() and os.access(C_FENCE_VIRT, os.X_OK)


@dataclass
class TcpSetup(MulticastSetup):
    """One tcp listener + libvirt backend configuration, written as fence_virt.conf.

    The fields of :class:`~fence_virt_testinfra.c_suite.MulticastSetup` keep their meaning
    (``interface`` is unused); ``address`` is where the listener binds, by default the
    loopback address of ``family`` (127.0.0.1 or ::1), as C's default.

    ``backend``/``backend_block`` put another backend in (our daemon on the in-memory test
    backend, say); the C daemon knows only ``libvirt``.

    ``hash`` and ``auth`` are written only when they differ from the default ``sha256``:
    C's tcp listener (server/tcp.c, 4.12.1) stores the ``auth`` key into its *hash*
    setting and always challenges with sha256, so a written default ``auth`` would reset
    the ``hash`` minimum. ``auth = "sha1"`` therefore means, to the C daemon, "accept
    sha1-signed requests, challenge with sha256".
    """

    #: the backend plugin; anything but ``libvirt`` needs :attr:`backend_block`
    backend: str = "libvirt"
    #: the body of ``backends { }`` for another backend, e.g. ``memory { vm = "vm1"; }``
    backend_block: str | None = None

    def config_text(self, module_path: str | None = None) -> str:
        """The configuration; ``module_path`` is where the C daemon finds its plugins."""
        address = self.address or ("::1" if self.family == "ipv6" else "127.0.0.1")
        modules = f'\tmodule_path = "{module_path}";\n' if module_path else ""
        backend = self.backend_block or f'libvirt {{\n\t\turi = "{self.uri}";\n\t}}'
        return (
            f'fence_virtd {{\n\tlistener = "tcp";\n\tbackend = "{self.backend}";\n{modules}}}\n'
            "listeners {\n\ttcp {\n"
            f'\t\tkey_file = "{self.key_file}";\n\t\taddress = "{address}";\n'
            f'\t\tport = "{self.port}";\n\t\tfamily = "{self.family}";\n'
            + "".join(
                f'\t\t{name} = "{value}";\n'
                for name, value in (("hash", self.hash), ("auth", self.auth))
                if value != "sha256"
            )
            + "\t}\n}\n"
            f"backends {{\n\t{backend}\n}}\n" + self._groups_text()
        )


@contextmanager
def c_fence_virtd_tcp(ns: NetNS, workdir: Path, setup: TcpSetup) -> Iterator[Daemon]:
    """The C fence_virtd serving ``setup`` in ``ns`` once it listens; killed by PID on exit."""
    with c_fence_virtd(ns, workdir, setup, ready=TCP_READY) as daemon:
        yield daemon


def run_c_fence_virt(
    ns: NetNS, argv: Sequence[str], stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """The C ``fence_virt ARGV`` inside ``ns`` (bytes out), like :func:`.c_suite.run_in`.

    Raises ValueError unless the run has an explicit TCP target (``-T`` in argv, or
    ``ipaddr=`` on stdin when argv is empty) and no vsock option (``-S``, ``vsock``).
    """
    words = list(argv)
    if words:
        targeted = any(word.startswith("-T") for word in words)
        vsock = any(word.startswith("-") and "S" in word.lstrip("-") for word in words)
    else:
        data = stdin or b""
        targeted = b"ipaddr=" in data
        vsock = b"vsock" in data.lower()
    if not targeted or vsock:
        raise ValueError(f"refusing to run the C fence_virt without -T or with -S: {words}")
    return run_in(ns, [C_FENCE_VIRT, *words], stdin, timeout)


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
    argv = ["-T", address, "-k", str(key), *(["-p", str(port)] if port is not None else [])]
    done = run_c_fence_virt(ns, [*argv, *args], timeout=timeout)
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def blackhole(ns: NetNS, network: str = "198.51.100.1/24", name: str = "fvtbh") -> str:
    """An address in ``ns`` that never answers: connects to it time out.

    A veth pair with both ends inside ``ns``: ``{name}0`` holds ``network``, ``{name}1`` is
    up without an address, and a permanent neighbour entry sends the frames for the
    network's .50 to a MAC nobody has, so the other end drops them (the kernel here has no
    dummy interfaces). Nothing leaves the namespace. Returns that address.
    """
    prefix = network.split("/", 1)[0].rsplit(".", 1)[0]
    silent = f"{prefix}.50"
    ns.ip("link", "add", f"{name}0", "type", "veth", "peer", "name", f"{name}1")
    ns.ip("addr", "add", network, "dev", f"{name}0")
    for end in (f"{name}0", f"{name}1"):
        ns.ip("link", "set", end, "up")
    ns.ip("neigh", "add", silent, "lladdr", "02:00:00:00:00:50", "dev", f"{name}0", "nud",
          "permanent")  # fmt: skip
    return silent
