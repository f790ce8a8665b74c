"""Fixtures for the multicast listener's tests.

Network safety: everything that sends a datagram or opens a TCP connection runs inside a
namespace made by :func:`fence_virt.testing.netns.netns` -- either a subprocess started with
``ip netns exec`` or a thread that entered the namespace with ``setns(2)`` (a network
namespace belongs to a thread, and sockets keep the namespace they were made in).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fence_virt.protocol import AuthExchange, FenceRequest, HashType, sign_request
from fence_virt.testing.c_suite import MulticastSetup, c_fence_virtd, have_c_suite
from fence_virt.testing.libvirtd import Libvirtd
from fence_virt.testing.netns import NetNS, netns
from fence_virt.testing.processes import Daemon, wait_until
from fence_virt.testing.qemu import QemuGuest

T = TypeVar("T")

FENCE_VIRTD = str(Path(sys.executable).parent / "fence_virtd")
C_FENCE_XVM = "/usr/sbin/fence_xvm"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling thread into namespace ``name``."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(ns: NetNS, func: Callable[[], T]) -> T:
    """Run ``func`` on a fresh thread inside ``ns`` and return its result."""
    result: Future[T] = Future()

    def body() -> None:
        try:
            enter_netns(ns.name)
            result.set_result(func())
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            result.set_exception(exc)

    thread = threading.Thread(target=body, name=f"in-{ns.name}")
    thread.start()
    thread.join()
    return result.result()


class NetnsLoop:
    """An asyncio event loop on a thread inside a namespace; ``run`` waits for a coroutine."""

    def __init__(self, ns: NetNS) -> None:
        self.ns = ns
        self.loop = asyncio.new_event_loop()
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name=ns.name)
        self._thread.start()
        started.result(10)

    def _main(self, started: Future[None]) -> None:
        try:
            enter_netns(self.ns.name)
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            started.set_exception(exc)
            return
        asyncio.set_event_loop(self.loop)
        started.set_result(None)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def ns() -> Iterator[NetNS]:
    with netns("mc") as namespace:
        yield namespace


@pytest.fixture
def ns_loop(ns: NetNS) -> Iterator[NetnsLoop]:
    runner = NetnsLoop(ns)
    try:
        yield runner
    finally:
        runner.close()


def write_key(path: Path, size: int = 4096) -> Path:
    path.write_bytes(secrets.token_bytes(size))
    path.chmod(0o600)
    return path


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return write_key(tmp_path / "fence_xvm.key")


# ---------------------------------------------------------------------------------------------
# topologies: a guest namespace and a host namespace joined by a veth pair


@dataclass
class GuestHost:
    """Guest ``gveth`` 198.51.100.11 / 2001:db8:5::11 <-> host ``hveth`` 198.51.100.1 / ::1."""

    guest: NetNS
    host: NetNS
    guest_ip: str = "198.51.100.11"
    host_ip: str = "198.51.100.1"
    guest_ip6: str = "2001:db8:5::11"
    host_ip6: str = "2001:db8:5::1"
    host_if: str = "hveth"
    guest_if: str = "gveth"
    extra_guest_ips: list[str] = field(default_factory=list)

    def add_guest_ip(self, ip: str) -> None:
        self.guest.ip("addr", "add", f"{ip}/24", "dev", self.guest_if)
        self.extra_guest_ips.append(ip)


@contextlib.contextmanager
def make_guest_host() -> Iterator[GuestHost]:
    with netns("mcg") as guest, netns("mch") as host:
        pair = GuestHost(guest, host)
        guest.add_veth(host, pair.guest_if, pair.host_if)
        for side, ifname, ip4, ip6 in (
            (guest, pair.guest_if, pair.guest_ip, pair.guest_ip6),
            (host, pair.host_if, pair.host_ip, pair.host_ip6),
        ):
            side.run("sysctl", "-qw", f"net.ipv6.conf.{ifname}.accept_dad=0")
            side.ip("addr", "add", f"{ip4}/24", "dev", ifname)
            side.ip("-6", "addr", "add", f"{ip6}/64", "dev", ifname, "nodad")
            side.ip("link", "set", ifname, "up")
        guest.ip("route", "add", "224.0.0.0/4", "dev", pair.guest_if)
        for side in (guest, host):  # a datagram sent before DAD ends is lost
            wait_until(lambda s=side: not _tentative(s), 10, f"IPv6 DAD in {side.name}")
        yield pair


def _tentative(ns: NetNS) -> bool:
    return bool(ns.run("ip", "-6", "addr", "show", "tentative").stdout.strip())


@pytest.fixture
def guest_host() -> Iterator[GuestHost]:
    with make_guest_host() as pair:
        yield pair


@pytest.fixture
def guest_host_factory() -> Callable[[], contextlib.AbstractContextManager[GuestHost]]:
    """``with guest_host_factory() as pair:`` another guest/host pair."""
    return make_guest_host


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
    """Starts daemons inside namespaces and stops every one of them, by PID."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self._started: list[Daemon] = []
        self._stack = contextlib.ExitStack()
        self._count = 0

    def _paths(self, tag: str) -> tuple[Path, Path, Path]:
        self._count += 1
        base = self._tmp / f"{tag}{self._count}"
        return base.with_suffix(".conf"), base.with_suffix(".pid"), base.with_suffix(".log")

    def ours(self, ns: NetNS, key: Path, backend: str = MEMORY_BACKEND, **settings: str) -> Daemon:
        """Our fence_virtd -F with the multicast listener; ``settings`` go into its block."""
        config, pid, log = self._paths("ours")
        head = 'fence_virtd {\n\tlistener = "multicast";\n'
        head += '\tbackend = "libvirt";\n' if "libvirt" in backend else '\tbackend = "memory";\n'
        write_config(config, head + "}\n" + multicast_block(key, **settings) + backend)
        daemon = Daemon(
            ns.argv(FENCE_VIRTD, "-F", "-d", "1", "-f", str(config), "-p", str(pid)), log
        )
        self._started.append(daemon)
        daemon.wait_for_log("fence_virtd started", timeout=30)
        return daemon

    def ours_from(self, ns: NetNS, setup: MulticastSetup) -> Daemon:
        """Our fence_virtd on a configuration the C daemon reads too."""
        config, pid, log = self._paths("ours")
        setup.write(config)
        argv = [FENCE_VIRTD, "-F", "-d", "1", "-f", str(config), "-p", str(pid)]
        daemon = Daemon(ns.argv(*argv), log)
        self._started.append(daemon)
        daemon.wait_for_log("fence_virtd started", timeout=30)
        return daemon

    def c_from(self, ns: NetNS, setup: MulticastSetup) -> Daemon:
        """The C fence_virtd (shared fixture code in fence_virt.testing.c_suite)."""
        self._count += 1
        workdir = self._tmp / f"c{self._count}"
        return self._stack.enter_context(c_fence_virtd(ns, workdir, setup))

    def stop_all(self) -> None:
        try:
            for daemon in reversed(self._started):
                daemon.stop()
        finally:
            self._stack.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_fence_xvm(ns: NetNS, key: Path, *args: str, timeout: float = 60) -> Result:
    """The C fence_xvm inside ``ns`` (never outside: it multicasts on every interface)."""
    done = subprocess.run(
        ns.argv(C_FENCE_XVM, "-k", str(key), *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def c_suite() -> None:
    """Skip (saying why) when the C suite is not installed."""
    if not have_c_suite():
        pytest.skip("the C suite is missing: install Debian fence-virt, fence-virtd, coreutils")


@pytest.fixture
def fence_xvm(c_suite: None) -> Callable[..., Result]:
    """``fence_xvm(ns, key, *args)``: run the C agent inside a namespace."""
    return run_fence_xvm


@pytest.fixture
def netns_call() -> Callable[[NetNS, Callable[[], Any]], Any]:
    """``netns_call(ns, func)``: run ``func`` on a thread inside ``ns``."""
    return in_netns


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
        request = FenceRequest.build(
            operation,
            domain,
            hashtype=hashtype,
            seqno=seqno,
            address=ip_address(source),
            port=self.port if listen_port is None else listen_port,
        )
        return sign_request(request, self.key if key is None else key).encode()

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
                    answer.set_result(await self._exchange(reader, writer, auth))
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

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, auth: HashType
    ) -> bytes:
        exchange = AuthExchange.for_client(auth, self.key)
        while not exchange.done:
            if out := exchange.data_to_send():
                writer.write(out)
                await writer.drain()
            else:
                exchange.receive_data(await reader.readexactly(exchange.bytes_needed))
        return exchange.unused_data + await reader.read()


@pytest.fixture
def py_client(key_file: Path) -> PyClient:
    return PyClient(key_file.read_bytes())


# ---------------------------------------------------------------------------------------------
# a real QEMU guest (shared fixtures of fence_virt.testing.pytest_plugin)


@dataclass
class QemuVm:
    uri: str
    guest: QemuGuest


@pytest.fixture
def qemu_vm(libvirtd: Libvirtd, qemu_guest: QemuGuest) -> QemuVm:
    """A running tiny QEMU guest and the libvirt URI that manages it."""
    return QemuVm(libvirtd.qemu_uri, qemu_guest)
