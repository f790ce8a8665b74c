"""The C cpg backend's messages (c-suite-spec §6.2), byte for byte."""

from __future__ import annotations

import struct

import pytest

from fence_virt.errors import ProtocolError
from fence_virt_backend_cpg.wire import (
    BROADCAST,
    MESSAGE_SIZE,
    FenceMessage,
    MessageType,
    StoreVm,
    decode,
    encode,
)

UUID = "11111111-1111-1111-1111-111111111111"


def test_store_vm_matches_the_sniffed_c_message():
    """recipes §5b: ``02000000 00000000 ffffffff 00000000 "vm1"... "1111..." 01000000 01000000``
    (owner 1, state 1 running), 156 bytes."""
    raw = encode(StoreVm("vm1", UUID, owner=1, state=1))
    assert len(raw) == MESSAGE_SIZE == 156
    assert raw[:16] == bytes.fromhex("02000000 00000000 ffffffff 00000000")
    assert raw[16:81] == b"vm1".ljust(65, b"\0")
    assert raw[81:146] == UUID.encode().ljust(65, b"\0")
    assert raw[146:148] == b"\0\0"
    assert raw[148:156] == bytes.fromhex("01000000 01000000")
    assert decode(raw) == StoreVm("vm1", UUID, 1, 1)


def test_request_and_reply_layout():
    request = FenceMessage(MessageType.REQUEST, 7, BROADCAST, "vm1", 1, client_seqno=99)
    raw = encode(request)
    assert len(raw) == 156
    assert struct.unpack_from("<IIII", raw) == (0, 7, BROADCAST, 0)
    assert raw[16:144] == b"vm1".ljust(128, b"\0")
    assert struct.unpack_from("<iII", raw, 144) == (1, 99, 0)
    assert decode(raw) == request
    reply = FenceMessage(MessageType.REPLY, 7, 3, "vm1", 1, client_seqno=99, response=2)
    raw = encode(reply)
    assert struct.unpack_from("<IIII", raw) == (1, 7, 3, 0)
    assert struct.unpack_from("<iII", raw, 144) == (1, 99, 2)
    assert decode(raw) == reply


def test_c_garbage_after_the_nul_and_in_pad_is_ignored():
    raw = bytearray(encode(FenceMessage(MessageType.REQUEST, 1, BROADCAST, "vm1", 4)))
    raw[12:16] = b"\xde\xad\xbe\xef"  # C leaves the header's pad uninitialised
    raw[20:30] = b"\xff" * 10  # after vm1's NUL
    assert decode(bytes(raw)).vm_name == "vm1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\0" * 155, "155 bytes"),
        (struct.pack("<IIII", 3, 0, 0, 0) + b"\0" * 140, "type 3"),
        (encode(StoreVm("vm1", UUID, 1, 1))[:16] + b"\xff" * 140, "UTF-8"),
    ],
)
def test_undecodable_messages_raise_protocol_error(data, problem):
    with pytest.raises(ProtocolError, match=problem):
        decode(data)


def test_names_that_do_not_fit_the_c_fields_are_refused():
    with pytest.raises(ProtocolError, match="vm_name longer than 127"):
        encode(FenceMessage(MessageType.REQUEST, 1, BROADCAST, "x" * 128, 1))
    with pytest.raises(ProtocolError, match="v_name longer than 64"):
        encode(StoreVm("x" * 65, UUID, 1, 1))
