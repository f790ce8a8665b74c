"""fence_req_t: layout, construction, validation, decoding errors."""

from __future__ import annotations

import hashlib
from ipaddress import ip_address

import pytest

from fence_virt.errors import LocalError, ProtocolError
from fence_virt.protocol import (
    FENCE_REQ_SIZE,
    FenceRequest,
    HashType,
    Operation,
    RequestFlag,
    sign_request,
)
from fence_virt.protocol.fence_request import FENCE_REQ_STRUCT

H = bytes.fromhex
KEY = b"worked-example-key\n"
NONCE = H("a1a2a3a4a5a6")


def test_struct_size():
    assert FENCE_REQ_STRUCT.size == FENCE_REQ_SIZE == 176


def test_worked_example_2_9():
    """c-suite-spec §2.9: multicast reboot of vm1, SHA-256, client 192.168.122.10."""
    expected_unsigned = (
        H("02020400")
        + b"vm1".ljust(64, b"\0")
        + H("c0a87a0a").ljust(28, b"\0")
        + H("cd04")
        + NONCE
        + H("40e20100")
        + H("02000000")
        + bytes(64)
    )
    digest = hashlib.sha256(KEY + expected_unsigned).digest()
    expected = expected_unsigned[:112] + digest + bytes(32)

    req = FenceRequest.build(
        Operation.REBOOT,
        "vm1",
        hashtype=HashType.SHA256,
        seqno=123456,
        address=ip_address("192.168.122.10"),
        port=1229,
    )
    assert req.encode() == expected_unsigned[:98] + bytes(6) + expected_unsigned[104:]
    signed = sign_request(req, KEY, nonce=NONCE)
    assert signed.encode() == expected
    assert FenceRequest.decode(expected) == signed


def test_build_ipv6_multicast():
    req = FenceRequest.build(
        Operation.STATUS,
        "vm",
        hashtype=HashType.SHA512,
        seqno=1,
        address=ip_address("fdaa::1"),
        port=1239,
    )
    data = req.encode()
    assert (data[2], data[108:112]) == (16, H("0a000000"))
    assert data[68:84] == ip_address("fdaa::1").packed
    assert data[84:96] == bytes(12)
    assert data[96:98] == H("d704")
    assert req.connect_back() == ("fdaa::1", 1239)


def test_build_tcp_request_has_no_address():
    req = FenceRequest.build(
        Operation.OFF, "a" * 63, hashtype=HashType.SHA1, seqno=999_999, flags=RequestFlag.UUID
    )
    assert (req.addrlen, req.address, req.port, req.family) == (0, bytes(28), 0, 0)
    assert req.by_uuid
    assert req.encode()[3] == 1
    assert req.encode()[104:108] == (999_999).to_bytes(4, "little")


def test_unknown_codes_decode():
    """The host answers FAIL to an unknown operation, so it has to decode."""
    data = bytes([200, 9]) + bytes(174)
    data = data[:4] + b"x\0" + data[6:]
    req = FenceRequest.decode(data)
    assert (req.request, req.operation, req.hashtype, req.hash_type) == (200, None, 9, None)
    assert req.encode() == data


@pytest.mark.parametrize("size", [0, 1, 175, 177, 352])
def test_decode_wrong_length(size):
    with pytest.raises(ProtocolError, match=f"176 bytes, got {size}"):
        FenceRequest.decode(bytes(size))


def test_decode_domain_without_nul():
    data = bytes(4) + b"x" * 64 + bytes(108)
    with pytest.raises(ProtocolError, match="no NUL"):
        FenceRequest.decode(data)


def test_decode_domain_not_utf8():
    data = bytes(4) + b"\xff\xfe\0".ljust(64, b"\0") + bytes(108)
    with pytest.raises(ProtocolError, match="UTF-8"):
        FenceRequest.decode(data)


def test_decode_ignores_bytes_after_domain_nul():
    """The C host reads the domain as a C string; the signature still covers the tail."""
    data = bytes(4) + b"vm\0junk".ljust(64, b"\0") + bytes(108)
    req = FenceRequest.decode(data)
    assert req.domain == "vm"
    assert req.encode() != data


def test_utf8_domain_round_trips():
    req = FenceRequest.build(Operation.ON, "vm-é" * 12, hashtype=HashType.NONE, seqno=0)
    assert len(req.domain.encode()) == 60
    assert FenceRequest.decode(req.encode()) == req


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"domain": "x" * 64}, "at most 63"),
        ({"domain": "é" * 32}, "64 bytes in UTF-8"),
        ({"domain": "a\0b"}, "NUL"),
        ({"domain": "\udcff"}, "UTF-8"),
        ({"request": 256}, "request"),
        ({"hashtype": -1}, "hashtype"),
        ({"addrlen": 300}, "addrlen"),
        ({"flags": 256}, "flags"),
        ({"port": 65536}, "port"),
        ({"seqno": 1 << 32}, "seqno"),
        ({"family": -2}, "family"),
        ({"address": bytes(4)}, "address must be 28 bytes"),
        ({"random": bytes(7)}, "random must be 6 bytes"),
        ({"hash": bytes(32)}, "hash must be 64 bytes"),
    ],
)
def test_construction_validates(changes, message):
    fields = {"request": 1, "hashtype": 2} | changes
    with pytest.raises(LocalError, match=message):
        FenceRequest(**fields)


def test_connect_back_unknown_family():
    req = FenceRequest(request=1, hashtype=2, family=7)
    with pytest.raises(ProtocolError, match="unknown address family 7"):
        req.connect_back()


@pytest.mark.parametrize(
    ("address", "text"),
    [
        ("198.51.100.9", "198.51.100.9"),
        ("2001:db8::9", "2001:db8::9"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("::ffff:198.51.100.9", "::ffff:198.51.100.9"),
    ],
)
def test_connect_back_text_is_what_c_logs(address, text):
    """inet_ntop writes an IPv4-mapped address dotted; Python 3.11's str() would not."""
    req = FenceRequest.build(
        Operation.OFF,
        "vm1",
        hashtype=HashType.NONE,
        seqno=1,
        address=ip_address(address),
        port=1229,
    )
    assert req.connect_back() == (text, 1229)


def test_decode_without_domain_keeps_every_other_field():
    signed = sign_request(
        FenceRequest.build(
            Operation.REBOOT,
            "vm1",
            hashtype=HashType.SHA256,
            seqno=5,
            address=ip_address("198.51.100.9"),
            port=1300,
        ),
        KEY,
    )
    data = bytearray(signed.encode())
    data[4:68] = b"x" * 64
    request, domain = FenceRequest.decode_without_domain(bytes(data))
    assert request == signed.replace(domain="")
    assert domain == b"x" * 64


def test_frozen():
    req = FenceRequest(request=1, hashtype=2)
    with pytest.raises(AttributeError):
        req.domain = "x"
