"""Fixtures for the multicast listener's tests: its daemons' configs, a small Python client.

Network safety: everything that sends a datagram or opens a TCP connection runs inside a
namespace made by :func:`fence_virt_testinfra.netns.netns` -- either a subprocess started with
``ip netns exec`` or a thread that entered the namespace with ``setns(2)``
(:mod:`fence_virt_testinfra.setns`). The shared fixtures (``ns``, ``ns_loop``, ``netns_call``,
``guest_host``, ``key_file``, ``fence_xvm``, ``libvirtd``, ``qemu_guest``...) come from
:mod:`fence_virt_testinfra.pytest_plugin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from fence_virt.protocol import HashType
from fence_virt.testing import client_session
from fence_virt.testing.factories import fence_datagram
from fence_virt_testinfra.c_suite import MulticastSetup, c_fence_virtd
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import our_fence_virtd, running_fence_virtd
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.qemu import QemuGuest

# ---------------------------------------------------------------------------------------------
# daemons


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def multicast_block(key: Path, **settings: str) -> str:
    values = {"key_file": str(key), "interface": "lo", **settings}
    lines = "".join(f'\t\t{k} = "{v}";\n' for k, v in values.items())
    return f"listeners {{\n\tmulticast {{\n{lines}\t}}\n}}\n"


MEMORY_BACKEND = 'backends {\n\tmemory {\n\t\tvm = "vm1";\n\t\tvm = "vm2";\n\t}\n}\n'


class Daemons:
    """Starts our and the C fence_virtd inside namespaces; ``stack`` stops each, by PID."""

    def __init__(self, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        self._tmp = tmp_path
        self._stack = stack
        self._count = 0

    def _workdir(self, tag: str) -> Path:
        self._count += 1
        workdir = self._tmp / f"{tag}{self._count}"
        workdir.mkdir()
        return workdir

    def ours(
        self,
        ns: NetNS,
        key: Path,
        backend: str = MEMORY_BACKEND,
        *,
        wrapper: Sequence[str] = (),
        **settings: str,
    ) -> Daemon:
        """Our fence_virtd -F with the multicast listener; ``settings`` go into its block;
        ``wrapper`` goes in front of its command (a :class:`FakeClock`'s, for instance)."""
        head = 'fence_virtd {\n\tlistener = "multicast";\n'
        head += '\tbackend = "libvirt";\n' if "libvirt" in backend else '\tbackend = "memory";\n'
        text = head + "}\n" + multicast_block(key, **settings) + backend
        return self.ours_text(ns, text, wrapper=wrapper)

    def ours_text(self, ns: NetNS, text: str, *, wrapper: Sequence[str] = ()) -> Daemon:
        """Our fence_virtd -F on the configuration ``text``."""
        workdir = self._workdir("ours")
        config = write_config(workdir / "fence_virt.conf", text)
        daemon = running_fence_virtd(ns, workdir, config, debug=1, wrapper=wrapper)
        return self._stack.enter_context(daemon)

    def ours_from(self, ns: NetNS, setup: MulticastSetup) -> Daemon:
        """Our fence_virtd on a configuration the C daemon reads too."""
        return self._stack.enter_context(our_fence_virtd(ns, self._workdir("ours"), setup, debug=1))

    def c_from(self, ns: NetNS, setup: MulticastSetup) -> Daemon:
        """The C fence_virtd on the same configuration."""
        return self._stack.enter_context(c_fence_virtd(ns, self._workdir("c"), setup))


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    with contextlib.ExitStack() as stack:
        yield Daemons(tmp_path, stack)


# ---------------------------------------------------------------------------------------------
# a small Python fence_xvm for in-process tests (the real C agent is used everywhere else)


@dataclass
class PyClient:
    """Signs requests with ``key``, multicasts them from ``source`` and takes the connect-back."""

    key: bytes
    group: str = "225.0.0.12"
    port: int = 1229

    def datagram(
        self,
        operation: int,
        domain: str = "",
        *,
        seqno: int = 4242,
        source: str = "127.0.0.1",
        listen_port: int | None = None,
        hashtype: HashType = HashType.SHA256,
        key: bytes | None = None,
    ) -> bytes:
        return fence_datagram(
            operation,
            domain,
            key=self.key if key is None else key,
            hashtype=hashtype,
            seqno=seqno,
            address=source,
            port=self.port if listen_port is None else listen_port,
        )

    def send(self, data: bytes, source: str = "127.0.0.1") -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
            sock.sendto(data, (self.group, self.port))

    async def call(
        self,
        operation: int,
        domain: str = "",
        *,
        seqno: int = 4242,
        source: str = "127.0.0.1",
        listen_port: int | None = None,
        auth: HashType = HashType.SHA256,
        copies: int = 1,
        timeout: float = 10,
        retrans: float = 1.0,
    ) -> bytes:
        """One fence_xvm run: listen, send ``copies`` datagrams, serve the first connection."""
        port = self.port if listen_port is None else listen_port
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                if not answer.done():
                    answer.set_result(await client_session(reader, writer, auth, self.key))
            except Exception as exc:  # noqa: BLE001 (handed to the awaiting test)
                if not answer.done():
                    answer.set_exception(exc)
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, source, port, reuse_address=True)
        try:
            async with asyncio.timeout(timeout):
                while True:  # as fence_xvm: resend, freshly signed, until someone connects
                    for _ in range(copies):
                        data = self.datagram(
                            operation, domain, seqno=seqno, source=source, listen_port=port
                        )
                        self.send(data, source)
                    done, _ = await asyncio.wait([answer], timeout=retrans)
                    if done:
                        return answer.result()
        finally:
            server.close()


@pytest.fixture
def py_client(key_file: Path) -> PyClient:
    return PyClient(key_file.read_bytes())


# ---------------------------------------------------------------------------------------------
# a real QEMU guest (on the shared fixtures libvirtd and qemu_guest)


@dataclass
class QemuVm:
    uri: str
    guest: QemuGuest


@pytest.fixture
def qemu_vm(libvirtd: Libvirtd, qemu_guest: QemuGuest) -> QemuVm:
    """A running tiny QEMU guest and the libvirt URI that manages it."""
    return QemuVm(libvirtd.qemu_uri, qemu_guest)
