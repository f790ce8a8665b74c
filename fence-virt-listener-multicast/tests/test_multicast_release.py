"""A request whose every connect-back failed is released: the client's retransmit (freshly
signed, same operation, seqno and domain) is then served, not dropped as a duplicate or a
replay (issue: "a request whose every connect-back failed is never released in any test").

The listener runs in-process on a loop inside a test namespace (``ns_loop``), as in
test_multicast_runner.py; the client is conftest's ``PyClient``. The dispatcher records
what reaches it: no backend is involved in a request that never connected back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from fence_virt import Target
from fence_virt.config import ConfigSection, parse_text
from fence_virt.protocol import HostState, Operation, Response
from fence_virt_listener_multicast.listener import MulticastListener
from fence_virt_listener_multicast.settings import resolve_settings

pytestmark = pytest.mark.netns

LOG = "fence_virt.listener.multicast"


class Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[Operation, str, int]] = []

    async def fence(self, operation: Operation, target: Target) -> Response:
        self.calls.append((operation, target.domain, target.seqno))
        return Response.SUCCESS

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        return []

    def dropped(self, requester: str, kind: object, reason: str) -> None:
        pass  # refusals are not what this test counts

    async def should_answer(self, operation: Operation, target: Target) -> bool:
        return True


async def started(key_file, dispatcher: Recording) -> MulticastListener:
    body = f'key_file = "{key_file}"; interface = "lo"; connect_timeout = "0.5";'
    tree = parse_text(f"listeners {{ multicast {{ {body} }} }}\n", source="test.conf")
    section = ConfigSection("listeners/multicast", tree.node("listeners/multicast"))
    listener = MulticastListener(resolve_settings(section), key_file.read_bytes())
    await listener.start(dispatcher)
    return listener


def test_a_request_no_connect_back_reached_is_served_when_sent_again(
    ns_loop, key_file, py_client, caplog
) -> None:
    async def scenario() -> tuple[list[tuple[Operation, str, int]], bytes]:
        dispatcher = Recording()
        listener = await started(key_file, dispatcher)
        try:
            # two copies from the guest's two addresses, both ports closed: refused twice
            for address in ("127.0.0.1", "127.0.0.2"):
                lost = py_client.datagram(
                    Operation.OFF, "vm1", seqno=31, source=address, listen_port=1311
                )
                py_client.send(lost)
            async with asyncio.timeout(10):
                while caplog.text.count("cannot connect back to port 1311") < 2:
                    await asyncio.sleep(0.02)
                while listener.in_progress:
                    await asyncio.sleep(0.02)
            assert dispatcher.calls == []
            answer = await py_client.call(Operation.OFF, "vm1", seqno=31, listen_port=1311)
            return dispatcher.calls, answer
        finally:
            await listener.stop()

    with caplog.at_level(logging.DEBUG, logger=LOG):
        calls, answer = ns_loop.run(scenario())
    assert answer == b"\x00"
    assert calls == [(Operation.OFF, "vm1", 31)]
    for address in ("127.0.0.1", "127.0.0.2"):
        assert f"vm1 from {address}: cannot connect back to port 1311" in caplog.text
    assert "replayed copy" not in caplog.text
