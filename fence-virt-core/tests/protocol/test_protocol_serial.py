"""serial_req_t, serial_resp_t and the response scanner."""

from __future__ import annotations

import pytest

from fence_virt.errors import LocalError, ProtocolError
from fence_virt.protocol import (
    SERIAL_REQ_SIZE,
    SERIAL_RESP_SIZE,
    Operation,
    SerialRequest,
    SerialResponse,
    SerialResponseScanner,
)
from fence_virt.protocol.serial import SERIAL_REQ_STRUCT, SERIAL_RESP_STRUCT

H = bytes.fromhex


def test_struct_sizes():
    assert SERIAL_REQ_STRUCT.size == SERIAL_REQ_SIZE == 74
    assert SERIAL_RESP_STRUCT.size == SERIAL_RESP_SIZE == 5


def test_request_layout():
    """§9.1 item 16: magic 61 62 62 61, seqno LE at 70."""
    req = SerialRequest(request=Operation.STATUS, domain="vm2", seqno=155965)
    data = req.encode()
    assert data[:4] == H("61626261")
    assert data[4:6] == b"\x04\x00"
    assert data[6:70] == b"vm2".ljust(64, b"\0")
    assert data[70:] == (155965).to_bytes(4, "little")
    assert SerialRequest.decode(data) == req
    assert SerialRequest.decode(data, strict=True).operation is Operation.STATUS


def test_request_magic_is_not_checked_by_default():
    """The C host ignores the request magic."""
    data = b"xxxx" + SerialRequest(request=99, domain="vm").encode()[4:]
    req = SerialRequest.decode(data)
    assert (req.magic, req.magic_ok, req.operation) == (b"xxxx", False, None)
    assert req.encode() == data
    with pytest.raises(ProtocolError, match="bad magic 78787878"):
        SerialRequest.decode(data, strict=True)


@pytest.mark.parametrize("size", [0, 5, 73, 75])
def test_request_wrong_length(size):
    with pytest.raises(ProtocolError, match=f"74 bytes, got {size}"):
        SerialRequest.decode(bytes(size))


def test_request_domain_without_nul():
    with pytest.raises(ProtocolError, match="no NUL"):
        SerialRequest.decode(b"abba\x01\x00" + b"v" * 64 + bytes(4))


@pytest.mark.parametrize(
    "changes",
    [{"domain": "x" * 64}, {"request": 256}, {"flags": -1}, {"seqno": 1 << 32}, {"magic": b"abc"}],
)
def test_request_construction_validates(changes):
    with pytest.raises(LocalError):
        SerialRequest(**({"request": 1} | changes))


def test_response_round_trip():
    assert SerialResponse(2).encode() == b"abba\x02"
    assert SerialResponse.decode(b"abba\xfd") == SerialResponse(0xFD)


@pytest.mark.parametrize("data", [b"abba", b"abba\x00\x00", b"abbb\x00"])
def test_response_decode_errors(data):
    with pytest.raises(ProtocolError):
        SerialResponse.decode(data)


def test_response_validates():
    with pytest.raises(LocalError):
        SerialResponse(256)


def test_scanner_finds_response_after_noise():
    scanner = SerialResponseScanner()
    assert scanner.feed(b"\x00\xffnoise") is None
    assert scanner.feed(b"ab") is None
    assert scanner.feed(b"ba") is None
    assert not scanner.done
    assert scanner.feed(b"\x02rest") == SerialResponse(2)
    assert scanner.done
    assert scanner.response == SerialResponse(2)
    assert scanner.unused_data == b"rest"
    assert scanner.skipped == 7


def test_scanner_handles_overlapping_prefix():
    """The C matcher misses 'aabba'; we do not."""
    scanner = SerialResponseScanner()
    assert scanner.feed(b"aabba\x00") == SerialResponse(0)
    assert scanner.skipped == 1


def test_scanner_takes_first_magic():
    assert SerialResponseScanner().feed(b"abbabba\x01") == SerialResponse(ord("b"))


def test_scanner_bounded_while_searching():
    scanner = SerialResponseScanner()
    for _ in range(100):
        scanner.feed(b"x" * 1000 + b"abb")
    assert scanner.skipped == 100 * 1003 - 3
    assert scanner.feed(b"a\x03") == SerialResponse(3)


def test_scanner_refuses_data_after_done():
    scanner = SerialResponseScanner()
    scanner.feed(b"abba\x00")
    with pytest.raises(LocalError):
        scanner.feed(b"more")
