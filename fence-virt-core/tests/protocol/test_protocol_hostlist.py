"""host_state_t records and the host-list stream."""

from __future__ import annotations

import pytest

from fence_virt.errors import LocalError, ProtocolError
from fence_virt.protocol import (
    HOSTLIST_RECORD_SIZE,
    HostListDecoder,
    HostState,
    Response,
    SerialResponse,
    encode_hostlist,
    encode_serial_hostlist,
)
from fence_virt.protocol.hostlist import HOST_STATE_STRUCT

VM1 = HostState("vm1", "11111111-1111-1111-1111-111111111111", 1)
VM2 = HostState("vm2", "22222222-2222-2222-2222-222222222222", 5)


def test_record_layout():
    assert HOST_STATE_STRUCT.size == HOSTLIST_RECORD_SIZE == 130
    data = VM1.encode()
    assert data[:64] == b"vm1".ljust(64, b"\0")
    assert data[64:128] == VM1.uuid.encode().ljust(64, b"\0")
    assert data[128:] == b"\x01\x00"
    assert HostState.decode(data) == VM1


def test_decode_ignores_c_garbage():
    """Bytes 63, 127, 129 hold stale stack data in C; a 63-byte name has no NUL at all."""
    long_name = "n" * 63
    data = bytearray(HostState(long_name, VM1.uuid, 3).encode())
    data[63], data[127], data[129] = 0x41, 0xA5, 0xFE
    assert HostState.decode(bytes(data)) == HostState(long_name, VM1.uuid, 3)


def test_decode_stops_at_first_nul():
    data = bytearray(VM1.encode())
    data[10:14] = b"junk"
    assert HostState.decode(bytes(data)).domain == "vm1"


def test_decode_invalid_utf8_is_replaced():
    """C cuts names at 63 bytes, possibly inside a multi-byte character."""
    data = bytearray(VM1.encode())
    data[0:63] = ("a" * 62 + "é").encode()[:63]
    assert HostState.decode(bytes(data)).domain == "a" * 62 + "\ufffd"


def test_encode_truncates_like_c_on_a_character_boundary():
    state = HostState("é" * 40, "u", 1)
    data = state.encode()
    assert data[:62] == ("é" * 31).encode()
    assert data[62:64] == b"\0\0"
    assert HostState.decode(data).domain == "é" * 31


@pytest.mark.parametrize(
    ("domain", "uuid", "state"),
    [("a\0", "u", 1), ("a", "\udc80", 1), ("a", "u", 256), ("a", "u", -1)],
)
def test_construction_validates(domain, uuid, state):
    with pytest.raises(LocalError):
        HostState(domain, uuid, state)


def test_running_and_terminator():
    assert VM1.running
    assert not VM2.running
    assert HostState("", "", 0).is_terminator
    assert not HostState("", "u", 0).is_terminator


def test_encode_hostlist_bytes():
    """§9.1 item 10: 0xFD, records, 130 zero bytes, result byte."""
    data = encode_hostlist([VM1, VM2], 0)
    assert data == b"\xfd" + VM1.encode() + VM2.encode() + bytes(130) + b"\x00"
    assert encode_hostlist([], 1) == b"\xfd" + bytes(130) + b"\x01"


def test_encode_serial_hostlist_bytes():
    """§9.1 item 16: magic-prefixed 0xFD header and magic-prefixed trailer."""
    data = encode_serial_hostlist([VM1], 0)
    assert data == b"abba\xfd" + VM1.encode() + bytes(130) + b"abba\x00"


def test_encode_rejects_empty_state_and_bad_result():
    with pytest.raises(LocalError, match="would end the list"):
        encode_hostlist([HostState("", "", 1)], 0)
    with pytest.raises(LocalError, match="result"):
        encode_hostlist([VM1], 256)
    with pytest.raises(LocalError, match="result"):
        encode_serial_hostlist([VM1], -1)


def test_decoder_full_stream():
    decoder = HostListDecoder()
    assert decoder.feed(encode_hostlist([VM1, VM2], 0)) == [VM1, VM2]
    assert (decoder.done, decoder.response, decoder.result) == (True, Response.HOSTLIST, 0)


def test_decoder_does_not_wait_for_result():
    """§9.1 item 11: the C client stops at the terminator and never reads the last byte."""
    decoder = HostListDecoder()
    assert decoder.feed(encode_hostlist([VM1], 0)[:-1]) == [VM1]
    assert decoder.done
    assert decoder.result is None
    assert decoder.feed(b"\x07junk") == []
    assert decoder.result == 7
    assert decoder.feed(b"\x08") == []
    assert decoder.result == 7


def test_decoder_partial_records():
    data = encode_hostlist([VM1, VM2], 0)
    decoder = HostListDecoder()
    assert decoder.feed(data[:100]) == []
    assert decoder.feed(data[100:140]) == [VM1]
    assert not decoder.done
    assert decoder.feed(data[140:]) == [VM2]
    assert decoder.done


def test_decoder_terminator_with_garbage_state_and_pad():
    decoder = HostListDecoder()
    terminator = bytes(128) + b"\x05\xfe"
    assert decoder.feed(b"\xfd" + VM1.encode() + terminator) == [VM1]
    assert decoder.done


@pytest.mark.parametrize("code", [0, 1, 2, 3, 0xFC, 0xFF])
def test_decoder_plain_response_instead_of_list(code):
    decoder = HostListDecoder()
    assert decoder.feed(bytes([code]) + VM1.encode()) == []
    assert (decoder.done, decoder.response, decoder.result) == (True, code, None)
    assert decoder.feed(b"\x00") == []
    assert decoder.result is None


def test_decoder_empty_feed():
    decoder = HostListDecoder()
    assert decoder.feed(b"") == []
    assert decoder.response is None
    assert not decoder.done


def test_serial_decoder_full_stream_with_noise():
    decoder = HostListDecoder(serial=True)
    data = b"\r\nnoise ab" + encode_serial_hostlist([VM1, VM2], 0)
    states = []
    for i in range(len(data)):
        states += decoder.feed(data[i : i + 1])
    assert states == [VM1, VM2]
    assert (decoder.done, decoder.response, decoder.result) == (True, 0xFD, 0)


def test_serial_decoder_non_list_response():
    decoder = HostListDecoder(serial=True)
    assert decoder.feed(SerialResponse(3).encode() + b"abba\x00") == []
    assert (decoder.done, decoder.response, decoder.result) == (True, 3, None)


@pytest.mark.parametrize("size", [0, 129, 131])
def test_record_wrong_length(size):
    with pytest.raises(ProtocolError, match=f"130 bytes, got {size}"):
        HostState.decode(bytes(size))
