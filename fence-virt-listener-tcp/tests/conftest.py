"""Fixtures for the tcp listener's tests: daemons, the C fence_virt -T, a small Python client.

Network safety: every daemon and client runs inside a namespace made by
:func:`fence_virt_testinfra.netns.netns` -- a subprocess started with ``ip netns exec`` or a
thread that entered the namespace (``ns_loop``) -- and the C ``fence_virt`` always gets an
explicit ``-T``. Shared fixtures (``ns``, ``ns_loop``, ``netns_call``, ``key_file``...) come
from :mod:`fence_virt_testinfra.pytest_plugin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fence_virt.protocol import HashType
from fence_virt.testing import client_session
from fence_virt_testinfra.c_tcp import (
    TcpSetup,
    c_fence_virtd_tcp,
    have_c_fence_virt,
    run_c_fence_virt_tcp,
)
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import running_fence_virtd
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.tools import unavailable

#: the in-memory backend (tests/plugins) with two running VMs
MEMORY_BACKEND = 'memory {\n\t\tvm = "vm1";\n\t\tvm = "vm2";\n\t}'


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


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

    def ours(self, ns: NetNS, setup: TcpSetup) -> Daemon:
        """Our fence_virtd -F -d 1 on ``setup``."""
        workdir = self._workdir("ours")
        config = setup.write(workdir / "fence_virt.conf")
        return self._stack.enter_context(running_fence_virtd(ns, workdir, config, debug=1))

    def ours_memory(self, ns: NetNS, key: Path, **settings: Any) -> Daemon:
        """Our fence_virtd with the tcp listener (``settings`` into TcpSetup) and the
        in-memory backend holding vm1 and vm2, both running."""
        setup = TcpSetup(key, backend="memory", backend_block=MEMORY_BACKEND, **settings)
        return self.ours(ns, setup)

    def ours_text(self, ns: NetNS, text: str) -> Daemon:
        """Our fence_virtd -F -d 1 on the configuration ``text``."""
        workdir = self._workdir("ours")
        config = write_config(workdir / "fence_virt.conf", text)
        return self._stack.enter_context(running_fence_virtd(ns, workdir, config, debug=1))

    def c(self, ns: NetNS, setup: TcpSetup) -> Daemon:
        """The C fence_virtd with its tcp listener on ``setup``."""
        return self._stack.enter_context(c_fence_virtd_tcp(ns, self._workdir("c"), setup))


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    with contextlib.ExitStack() as stack:
        yield Daemons(tmp_path, stack)


@pytest.fixture(scope="session")
def c_tcp() -> None:
    """Skip (saying why) when the C fence_virtd's tcp listener or fence_virt is missing."""
    if not have_c_fence_virt():
        unavailable("the C fence-virt suite is missing: install Debian fence-virt, fence-virtd")


@pytest.fixture
def fence_virt(c_tcp: None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``fence_virt(ns, key, address, *args, port=None)``: the C agent with ``-T address``."""
    return run_c_fence_virt_tcp


class StreamClient:
    """What fence_virt -T does, in-process (run it on a loop inside the test's namespace)."""

    @staticmethod
    async def call(
        host: str, port: int, data: bytes, key: bytes, auth: HashType = HashType.SHA256
    ) -> bytes:
        """Connect, send the request ``data``, run the client's handshake; every byte the
        host sent after it (the answer)."""
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(data)
        return await client_session(reader, writer, auth, key)

    @staticmethod
    async def raw(host: str, port: int, data: bytes) -> bytes:
        """Connect, send ``data``, half-close; whatever the host sent before it closed."""
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(data)
            await writer.drain()
            writer.write_eof()
            return await reader.read()
        except ConnectionResetError:
            return b""
        finally:
            writer.close()


@pytest.fixture
def stream_client() -> StreamClient:
    return StreamClient()
