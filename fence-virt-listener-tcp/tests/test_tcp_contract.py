"""The listener contract suite (fence_virt.testing) on the real tcp plugin, inside a test
namespace: the listener and the Python client (conftest ``StreamClient``, what fence_virt -T does)
both run on the ``ns_loop`` loop, whose thread entered the namespace, so every connection
stays there. With the wrong-key and retransmit checks: the listener authenticates requests
and runs copies of one request (same sequence number) once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from fence_virt.protocol import DEFAULT_PORT, Response
from fence_virt.testing import (
    ClientRequest,
    ListenerContract,
    ListenerHarness,
    RetransmitContract,
    WrongKeyContract,
)
from fence_virt.testing.factories import fence_request, malformed_fence_datagrams, other_key
from fence_virt_listener_tcp.plugin import TcpListenerPlugin

pytestmark = pytest.mark.netns

HOST = "127.0.0.1"


def answer_of(data: bytes) -> Response:
    """The response byte the host sent back after the handshake."""
    assert len(data) == 1, f"expected one response byte, got {data!r}"
    return Response(data[0])


def config(key_file: Path) -> str:
    return f'listeners {{\n\ttcp {{\n\t\tkey_file = "{key_file}";\n\t}}\n}}\n'


def sender(client, key: bytes, signing_key: bytes | None = None) -> Callable:
    """``send(request)``: one fence_virt -T run signed with ``signing_key`` (default ``key``)."""

    async def send(request: ClientRequest) -> Response | None:
        data = fence_request(
            request.operation, request.domain, key=signing_key or key, seqno=request.seqno
        ).encode()
        try:
            return answer_of(await client.call(HOST, DEFAULT_PORT, data, key))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None  # the host hung up: the request was refused

    return send


class TestTcpListenerContract(ListenerContract, WrongKeyContract, RetransmitContract):
    @pytest.fixture
    def listener_harness(self, ns_loop, key_file: Path, stream_client) -> ListenerHarness:
        key = key_file.read_bytes()
        send = sender(stream_client, key)

        async def send_bytes(data: bytes) -> None:
            await stream_client.raw(HOST, DEFAULT_PORT, data)

        async def send_copies(request: ClientRequest, copies: int) -> Response | None:
            """``copies`` connections at once, each with a freshly signed copy."""
            answers = await asyncio.gather(*(send(request) for _ in range(copies)))
            return next((a for a in answers if a is not None), None)

        return ListenerHarness(
            plugin=TcpListenerPlugin,
            name="tcp",
            config=config(key_file),
            requester=HOST,  # the peer address the listener sees
            send=send,
            send_bytes=send_bytes,
            malformed=malformed_fence_datagrams(key),
            send_wrong_key=sender(stream_client, key, other_key(key)),
            send_copies=send_copies,
            run=ns_loop.run,
        )
