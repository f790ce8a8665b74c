"""The listener contract suite (fence_virt.testing) on the real vsock plugin.

No connection is made over ``AF_VSOCK`` (conftest says why): the listener binds and listens
a real vsock socket, and its clients reach it through ``socketpair`` ends handed to its
stream server with the peer address a guest would have, CID included. With the wrong-key
and retransmit checks: the listener authenticates requests and runs copies once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from fence_virt import hookimpl
from fence_virt.config import ConfigSection
from fence_virt.listening import StreamServer
from fence_virt.protocol import Response
from fence_virt.testing import (
    ClientRequest,
    ListenerContract,
    ListenerHarness,
    RetransmitContract,
    WrongKeyContract,
)
from fence_virt.testing.factories import fence_request, malformed_fence_datagrams, other_key
from fence_virt_listener_vsock.listener import VsockListener
from fence_virt_listener_vsock.plugin import VsockListenerPlugin

GUEST_CID = 3


class ReachableVsockPlugin(VsockListenerPlugin):
    """The real plugin, remembering the listeners it creates so that the harness can hand
    connections to the one that is serving (a test double only in that respect)."""

    def __init__(self) -> None:
        self.created: list[VsockListener] = []

    @hookimpl
    def fence_virt_listener_create(self, section: ConfigSection) -> VsockListener:
        listener = super().fence_virt_listener_create(section)
        self.created.append(listener)
        return listener

    def serving(self) -> StreamServer:
        """The stream server of the listener that is started now."""
        for listener in reversed(self.created):
            if listener.server is not None and listener.server.serving:
                return listener.server
        raise AssertionError("no vsock listener is serving")


def answer_of(data: bytes) -> Response:
    assert len(data) == 1, f"expected one response byte, got {data!r}"
    return Response(data[0])


def config(key_file: Path, port: int) -> str:
    return (
        f'listeners {{\n\tvsock {{\n\t\tkey_file = "{key_file}";\n\t\tport = "{port}";\n\t}}\n}}\n'
    )


class TestVsockListenerContract(ListenerContract, WrongKeyContract, RetransmitContract):
    @pytest.fixture
    def listener_harness(self, key_file: Path, vsock_port: int, guest_factory) -> ListenerHarness:
        key = key_file.read_bytes()
        plugin = ReachableVsockPlugin()
        guest = guest_factory(GUEST_CID, plugin.serving)

        def sender(signing_key: bytes) -> Callable:
            async def send(request: ClientRequest) -> Response | None:
                data = fence_request(
                    request.operation, request.domain, key=signing_key, seqno=request.seqno
                ).encode()
                try:
                    return answer_of(await guest.call(data, key))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return None  # the host hung up: refused

            return send

        send = sender(key)

        async def send_bytes(data: bytes) -> None:
            await guest.raw(data)

        async def send_copies(request: ClientRequest, copies: int) -> Response | None:
            answers = await asyncio.gather(*(send(request) for _ in range(copies)))
            return next((a for a in answers if a is not None), None)

        return ListenerHarness(
            plugin=plugin,
            name="vsock",
            config=config(key_file, vsock_port),
            requester=str(GUEST_CID),
            send=send,
            send_bytes=send_bytes,
            malformed=malformed_fence_datagrams(key),
            send_wrong_key=sender(other_key(key)),
            send_copies=send_copies,
        )
