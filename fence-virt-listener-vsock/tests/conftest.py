"""Fixtures for the vsock listener's tests: a free vsock port, and a guest that reaches the
listener without a vsock connection.

Why no test connects over ``AF_VSOCK``: the development and CI machines have no vsock
loopback transport (kernels built without ``vsock_loopback``, no loadable modules), so a
connect to any CID, even 1 or the machine's own, leaves the machine for its hypervisor.
The tests create, bind and listen real ``AF_VSOCK`` sockets (that stays local) and hand the
listener's stream server one end of a ``socketpair`` with the address a guest's connection
would have, ``(CID, port)``: the same code then serves it as an accepted vsock connection.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable

import pytest

from fence_virt.listening import StreamServer
from fence_virt.protocol import HashType
from fence_virt.testing import client_session

#: ports guests connect from (any will do: the requester is the CID)
_guest_ports = itertools.count(40000)


@pytest.fixture
def vsock_port() -> int:
    """A vsock port nobody listens on right now (the kernel's choice for an ephemeral bind).

    vsock ports are not per network namespace: a fixed port could collide with another test
    run on the same machine."""
    if not hasattr(socket, "AF_VSOCK"):
        pytest.skip("this Python has no AF_VSOCK")
    try:
        with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as probe:
            probe.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
            return int(probe.getsockname()[1])
    except OSError as exc:
        pytest.skip(f"no vsock sockets on this machine: {exc.strerror}")


class Guest:
    """A vsock guest with CID ``cid``, as the listener's stream server sees it."""

    def __init__(self, cid: int, server: Callable[[], StreamServer]) -> None:
        self.cid = cid
        self._server = server

    def connect(self) -> socket.socket:
        """A new connection to the listener; returns the guest's end."""
        host_end, guest_end = socket.socketpair()
        self._server().connection_made(host_end, (self.cid, next(_guest_ports)))
        return guest_end

    async def call(self, data: bytes, key: bytes, auth: HashType = HashType.SHA256) -> bytes:
        """What fence_virt -S does after its connect: send the request, run the client's
        handshake; every byte the host sent after it (the answer)."""
        reader, writer = await asyncio.open_connection(sock=self.connect())
        writer.write(data)
        return await client_session(reader, writer, auth, key)

    async def raw(self, data: bytes) -> bytes:
        """Send ``data``, half-close; whatever the host sent before it closed."""
        reader, writer = await asyncio.open_connection(sock=self.connect())
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
def guest_factory() -> type[Guest]:
    """``guest_factory(cid, server)``: a :class:`Guest` reaching the server ``server()``
    returns (called at each connect, so it may follow a listener that restarts)."""
    return Guest
