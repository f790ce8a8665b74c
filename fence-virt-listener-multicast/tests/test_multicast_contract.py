"""The listener contract suite (fence_virt.testing) on the real multicast plugin, inside a
test namespace: the listener and the Python client (conftest ``PyClient``) both run on the
``ns_loop`` loop, whose thread entered the namespace, so every datagram and connect-back
stays there. Includes the wrong-key and retransmit checks: the multicast listener
authenticates requests and runs retransmitted copies once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from fence_virt.protocol import Response
from fence_virt.testing import (
    ClientRequest,
    ListenerContract,
    ListenerHarness,
    RetransmitContract,
    WrongKeyContract,
)
from fence_virt.testing.factories import malformed_fence_datagrams, other_key
from fence_virt_listener_multicast.plugin import MulticastListenerPlugin

pytestmark = pytest.mark.netns

#: seconds a client waits for a connect-back that should not come (wrong key, late copy)
NO_ANSWER = 3.0


def answer_of(data: bytes) -> Response:
    """The response byte the host sent back after the handshake."""
    assert len(data) == 1, f"expected one response byte, got {data!r}"
    return Response(data[0])


def config(key_file: Path) -> str:
    block = f'\tmulticast {{\n\t\tkey_file = "{key_file}";\n\t\tinterface = "lo";\n\t}}\n'
    return f"listeners {{\n{block}}}\n"


class TestMulticastListenerContract(ListenerContract, WrongKeyContract, RetransmitContract):
    @pytest.fixture
    def listener_harness(self, ns_loop, key_file: Path, py_client) -> ListenerHarness:
        def sender(client, *, copies: int = 1, timeout: float = 10) -> Callable:
            async def send(request: ClientRequest) -> Response | None:
                try:
                    data = await client.call(
                        request.operation,
                        request.domain,
                        seqno=request.seqno,
                        copies=copies,
                        timeout=timeout,
                    )
                except TimeoutError:
                    return None
                return answer_of(data)

            return send

        async def send_bytes(data: bytes) -> None:
            py_client.send(data)

        async def send_copies(request: ClientRequest, copies: int) -> Response | None:
            return await sender(py_client, copies=copies, timeout=NO_ANSWER)(request)

        wrong_client = replace(py_client, key=other_key(py_client.key))
        return ListenerHarness(
            plugin=MulticastListenerPlugin,
            name="multicast",
            config=config(key_file),
            requester="127.0.0.1",  # the connect-back address the client's datagram carries
            send=sender(py_client),
            send_bytes=send_bytes,
            malformed=malformed_fence_datagrams(py_client.key),
            send_wrong_key=sender(wrong_client, timeout=NO_ANSWER),
            send_copies=send_copies,
            run=ns_loop.run,
        )
