"""The vsock listener in a whole fence_virtd, in-process: the daemon built from config text
with every plugin found through its entry point (``vsock``, and the in-memory backend of
tests/plugins), its static map keyed by the guest's CID.

No connection is made over ``AF_VSOCK`` (conftest says why): the daemon's listener binds and
listens a real vsock socket; guests reach its stream server through ``socketpair`` ends
carrying the peer address a guest with that CID would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon import Daemon
from fence_virt.listening import StreamServer
from fence_virt.protocol import HostListDecoder, Operation, Response
from fence_virt.testing.factories import fence_request
from fence_virt.testing.memory.machines import machine_uuid
from fence_virt_listener_vsock.listener import VsockListener


def config_text(key_file: Path, port: int) -> str:
    return f"""
fence_virtd {{ listener = "vsock"; backend = "memory"; }}
listeners {{ vsock {{ key_file = "{key_file}"; port = "{port}"; }} }}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
groups {{
    group {{ ip = "3"; uuid = "vm1"; }}
    group {{ ip = "5"; uuid = "vm1"; uuid = "vm2"; uuid = "{machine_uuid("vm2")}"; }}
}}
"""


def serving_daemon(
    key_file: Path, port: int, body: Callable[[Daemon, StreamServer], Awaitable[None]]
) -> None:
    daemon = Daemon.from_config(parse_text(config_text(key_file, port), source="vsock.conf"))

    async def main() -> None:
        async with asyncio.timeout(60):
            async with daemon:
                [instance] = daemon.listeners
                listener = instance.listener
                assert isinstance(listener, VsockListener)
                assert listener.server is not None
                await body(daemon, listener.server)

    asyncio.run(main())


def test_the_static_map_knows_guests_by_cid(key_file: Path, vsock_port: int, guest_factory):
    key = key_file.read_bytes()

    async def body(daemon: Daemon, server: StreamServer) -> None:
        def guest(cid: int):
            return guest_factory(cid, lambda: server)

        async def ask(cid: int, operation: Operation, domain: str = "", **kwargs) -> bytes:
            data = fence_request(operation, domain, key=key, **kwargs).encode()
            return await guest(cid).call(data, key)

        machines = daemon.backend.machines  # the in-memory backend's VMs
        assert await ask(4, Operation.OFF, "vm1", seqno=1) == bytes([Response.PERM])
        assert await ask(3, Operation.OFF, "vm2", seqno=2) == bytes([Response.PERM])
        assert machines.is_running("vm1")
        assert machines.is_running("vm2")
        assert await ask(3, Operation.OFF, "vm1", seqno=3) == bytes([Response.SUCCESS])
        assert not machines.is_running("vm1")
        assert await ask(3, Operation.STATUS, "vm1", seqno=4) == bytes([Response.OFF])
        boots = machines.boots("vm2")
        uuid2 = machine_uuid("vm2")
        assert await ask(5, Operation.REBOOT, uuid2, seqno=5, by_uuid=True) == b"\x00"
        assert machines.boots("vm2") == boots + 1
        assert await ask(5, Operation.ON, "vm1", seqno=6) == b"\x00"
        assert await ask(4, Operation.DEVSTATUS, seqno=7) == b"\x00"  # monitor: unchecked
        assert await ask(4, Operation.NULL, "vm1", seqno=8) == b"\x01"  # C: null fails
        for cid, names in ((3, ["vm1"]), (4, []), (5, ["vm1", "vm2"])):
            listing = await ask(cid, Operation.HOSTLIST, seqno=9 + cid)
            assert [vm.domain for vm in HostListDecoder().feed(listing)] == names, cid

    serving_daemon(key_file, vsock_port, body)


def test_the_daemon_s_listener_is_a_real_vsock_socket(key_file: Path, vsock_port: int) -> None:
    import socket

    async def body(daemon: Daemon, server: StreamServer) -> None:
        with (
            socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as other,
            pytest.raises(OSError, match="Address already in use"),
        ):
            other.bind((socket.VMADDR_CID_ANY, vsock_port))
        assert server.serving

    serving_daemon(key_file, vsock_port, body)
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as again:
        again.bind((socket.VMADDR_CID_ANY, vsock_port))  # released by the daemon's stop
