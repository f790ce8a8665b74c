"""Byte order: the codec writes little-endian and recognises a big-endian client's request.

The big-endian requests here are made from the real captures of the C suite in
``tests/data/captures`` (PROVENANCE.md): the multi-byte fields of the captured fence_req --
port (offset 96, 2 bytes), seqno (104, 4) and family (108, 4) -- are byte-swapped, which is
what a C fence_xvm on a big-endian host writes, and the request is signed again with the
capture's key, as that client signs the bytes it sends.
"""

from __future__ import annotations

import pytest

from fence_virt.errors import ProtocolError
from fence_virt.protocol import FenceRequest, HashType, byte_swapped, verify_request
from fence_virt.protocol.auth import keyed_digest

#: (offset, size) of port, seqno and family in fence_req_t (c-suite-spec §2.2)
MULTI_BYTE_FIELDS = ((96, 2), (104, 4), (108, 4))


def swap_fields(data: bytes) -> bytes:
    swapped = bytearray(data)
    for offset, size in MULTI_BYTE_FIELDS:
        swapped[offset : offset + size] = swapped[offset : offset + size][::-1]
    return bytes(swapped)


def resign(data: bytes, key: bytes) -> bytes:
    signed = bytearray(data)
    signed[112:] = bytes(64)
    signed[112:] = keyed_digest(HashType.SHA256, key, bytes(signed))
    return bytes(signed)


def test_the_wire_order_is_stated_little_endian() -> None:
    request = FenceRequest.build(1, "vm", hashtype=HashType.NONE, seqno=0x01020304, port=1229)
    data = request.encode()
    assert data[96:98] == (1229).to_bytes(2, "little")
    assert data[104:108] == bytes([4, 3, 2, 1])


def test_a_captured_request_is_little_endian(vec_capture, tcp_capture) -> None:
    for data in vec_capture.udp_requests:
        assert byte_swapped(data) is False
    # tcp requests carry no address: family 0 reads the same both ways
    assert byte_swapped(tcp_capture.connections[0].from_initiator[:176]) is False


def test_a_swapped_capture_is_recognised_and_reads_as_the_original(vec_capture, vec_key) -> None:
    for original in vec_capture.udp_requests:
        swapped = resign(swap_fields(original), vec_key)
        assert byte_swapped(swapped) is True
        # authentic: the signature covers the bytes as sent, whatever their order
        misread = verify_request(swapped, vec_key, HashType.SHA256)
        with pytest.raises(ProtocolError, match="unknown address family 33554432"):
            misread.connect_back()
        expected = FenceRequest.decode(original)
        decoded = FenceRequest.decode(swapped, swapped=True)
        assert decoded.replace(random=expected.random, hash=expected.hash) == expected
        assert (decoded.seqno, decoded.port, decoded.family) in {(8451, 1229, 2), (13740, 1229, 2)}
        assert decoded.connect_back() == ("127.0.0.1", 1229)


def test_decode_without_domain_reads_swapped_too(vec_capture) -> None:
    swapped = swap_fields(vec_capture.udp_requests[0])
    request, domain = FenceRequest.decode_without_domain(swapped, swapped=True)
    assert (request.seqno, request.port, domain) == (8451, 1229, b"test")


def test_byte_swapped_needs_176_bytes() -> None:
    with pytest.raises(ProtocolError, match="must be 176 bytes"):
        byte_swapped(b"\0" * 175)
