"""The JSON messages hosts exchange: round trips and what is refused."""

from __future__ import annotations

import pytest

from fence_virt.errors import ProtocolError
from fence_virt_backend_amqp.wire import Announce, Reply, Request, decode, encode, host_key


@pytest.mark.parametrize(
    "message",
    [
        Announce(2, (("vm1", "1111-2", 1), ("vm2", "3333-4", 5)), hello=True),
        Announce(3, ()),
        Request(1, "off", "vm1", 77, 1764554400.25),
        Reply(2, 0),
    ],
)
def test_messages_survive_a_round_trip(message):
    assert decode(encode(message)) == message


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "malformed"),
        (b'{"v": 2, "host": 1, "kind": "reply", "response": 0}', "version 2"),
        (b'{"v": 1, "host": 1, "kind": "gossip"}', "unknown message kind"),
        (b'{"v": 1, "host": "1", "kind": "reply", "response": 0}', "expected an integer"),
        (b'{"v": 1, "host": true, "kind": "reply", "response": 0}', "expected an integer"),
        (b'{"v": 1, "host": 1, "kind": "reply"}', "malformed"),
        (b'{"v": 1, "host": 1, "kind": "announce", "vms": [["a", "b"]]}', "malformed"),
        (
            b'{"v": 1, "host": 1, "kind": "request", "op": "off", "vm": "x", '
            b'"client_seqno": 1, "sent": "now"}',
            "sent must be a number",
        ),
    ],
)
def test_malformed_messages_are_protocol_errors(body, why):
    with pytest.raises(ProtocolError, match=why):
        decode(body)


def test_host_queues_are_addressed_by_host_id():
    assert host_key(12) == "host.12"
