"""Code values of c-suite-spec §2.3 and the constants of §2.2-§2.8."""

from __future__ import annotations

import pytest

from fence_virt import protocol
from fence_virt.protocol import HashType, Operation, RequestFlag, Response


def test_operation_codes():
    assert [(op.name, op.value) for op in Operation] == [
        ("NULL", 0),
        ("OFF", 1),
        ("REBOOT", 2),
        ("ON", 3),
        ("STATUS", 4),
        ("DEVSTATUS", 5),
        ("HOSTLIST", 6),
        ("METADATA", 7),
        ("VALIDATEALL", 8),
    ]


def test_response_codes():
    assert [int(r) for r in Response] == [0, 1, 2, 3, 253]
    assert Response.HOSTLIST == 0xFD


def test_request_flag():
    assert RequestFlag.UUID == 1


@pytest.mark.parametrize(
    ("text", "expected", "size"),
    [
        ("none", HashType.NONE, 0),
        ("SHA1", HashType.SHA1, 20),
        ("Sha256", HashType.SHA256, 32),
        ("sha512", HashType.SHA512, 64),
    ],
)
def test_hash_type_parse(text, expected, size):
    assert HashType.parse(text) is expected
    assert expected.digest_size == size
    assert expected.label == text.lower()


@pytest.mark.parametrize("text", ["", "md5", "sha384", " sha256", "sha256\n", "\u017fha1", "x509"])
def test_hash_type_parse_rejects(text):
    with pytest.raises(ValueError, match="unknown hash type"):
        HashType.parse(text)


def test_constants():
    assert (protocol.FENCE_REQ_SIZE, protocol.DOMAIN_FIELD_SIZE, protocol.ADDRESS_SIZE) == (
        176,
        64,
        28,
    )
    assert (protocol.HASH_FIELD_SIZE, protocol.RANDOM_SIZE, protocol.CHALLENGE_SIZE) == (64, 6, 64)
    assert (protocol.HOSTLIST_RECORD_SIZE, protocol.SERIAL_REQ_SIZE) == (130, 74)
    assert (protocol.SERIAL_RESP_SIZE, protocol.SERIAL_MAGIC) == (5, b"abba")
    assert (protocol.MAX_KEY_LEN, protocol.DEFAULT_PORT) == (4096, 1229)
    assert (protocol.DEFAULT_IPV4_GROUP, protocol.DEFAULT_IPV6_GROUP) == ("225.0.0.12", "ff05::3:1")
    assert protocol.DEFAULT_KEY_FILE == "/etc/cluster/fence_xvm.key"
    assert (protocol.AF_INET_WIRE, protocol.AF_INET6_WIRE) == (2, 10)


def test_public_api_is_exported():
    for name in protocol.__all__:
        assert hasattr(protocol, name), name
