"""Datagram checks before any connect-back (the replay guard and the drop log are core's:
fence-virt-core/tests/listening)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

import pytest

from fence_virt.errors import AuthenticationError, ProtocolError, RemoteError
from fence_virt.protocol import FenceRequest, HashType, Operation, sign_request
from fence_virt_listener_multicast.datagram import check_datagram

KEY = bytes(range(256)) * 16


def signed(
    hashtype: HashType = HashType.SHA256,
    *,
    key: bytes = KEY,
    address: str = "198.51.100.11",
    port: int = 1229,
    domain: str = "vm1",
    family: int | None = None,
) -> FenceRequest:
    request = FenceRequest.build(
        Operation.REBOOT,
        domain,
        hashtype=hashtype,
        seqno=123456,
        address=ip_address(address),
        port=port,
    )
    if family is not None:
        request = replace(request, family=family)
    return sign_request(request, key)


def test_a_signed_request_is_accepted_with_its_connect_back_address() -> None:
    accepted = check_datagram(signed(domain="VM1").encode(), KEY, HashType.SHA256)
    assert (accepted.host, accepted.port) == ("198.51.100.11", 1229)
    assert accepted.history_key == (int(Operation.REBOOT), 123456, "vm1")


def test_ipv6_connect_back_address() -> None:
    accepted = check_datagram(signed(address="2001:db8:5::11").encode(), KEY, HashType.SHA256)
    assert accepted.host == "2001:db8:5::11"


@pytest.mark.parametrize("size", [0, 1, 175, 177, 1500])
def test_wrong_length_is_refused(size: int) -> None:
    data = (signed().encode() * 9)[:size]
    with pytest.raises(ProtocolError, match=f"must be 176 bytes, got {size}"):
        check_datagram(data, KEY, HashType.SHA256)


def test_wrong_key_is_refused_without_revealing_the_digest() -> None:
    request = signed(key=b"another key")
    with pytest.raises(AuthenticationError) as caught:
        check_datagram(request.encode(), KEY, HashType.SHA256)
    message = str(caught.value)
    assert "signature mismatch" in message
    good = signed(key=KEY)
    assert good.hash[:8].hex() not in message
    assert request.hash[:8].hex() not in message


def test_flipped_bit_is_refused() -> None:
    data = bytearray(signed().encode())
    data[5] ^= 1
    with pytest.raises(AuthenticationError):
        check_datagram(bytes(data), KEY, HashType.SHA256)


@pytest.mark.parametrize(
    ("client", "minimum", "ok"),
    [
        (HashType.NONE, HashType.SHA256, False),
        (HashType.SHA1, HashType.SHA256, False),
        (HashType.SHA256, HashType.SHA256, True),
        (HashType.SHA512, HashType.SHA256, True),
        (HashType.SHA1, HashType.SHA1, True),
        (HashType.NONE, HashType.NONE, True),
    ],
)
def test_minimum_hash_rule_is_c_s(client: HashType, minimum: HashType, ok: bool) -> None:
    data = signed(client).encode()
    if ok:
        assert check_datagram(data, KEY, minimum).request.hashtype == client
    else:
        with pytest.raises(AuthenticationError, match="weaker than required"):
            check_datagram(data, KEY, minimum)


def test_unknown_hash_type_is_refused() -> None:
    data = bytearray(signed().encode())
    data[1] = 9
    with pytest.raises(AuthenticationError, match="unknown hash type 9"):
        check_datagram(bytes(data), KEY, HashType.SHA256)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"family": 7}, "unknown address family 7"),
        ({"address": "0.0.0.0"}, "is not a host address"),
        ({"address": "225.0.0.12"}, "is not a host address"),
        ({"port": 0}, "port is 0"),
    ],
)
def test_unusable_connect_back_is_refused(kwargs: dict[str, object], words: str) -> None:
    data = signed(**kwargs).encode()  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match=words):
        check_datagram(data, KEY, HashType.SHA256)


def test_every_refusal_is_a_remote_error() -> None:
    for data in (b"", b"\xff" * 176, signed(key=b"k").encode()):
        with pytest.raises(RemoteError):
            check_datagram(data, KEY, HashType.SHA256)


def big_endian(request: FenceRequest, key: bytes = KEY) -> bytes:
    """What a C fence_xvm on a big-endian host sends: port, seqno and family byte-swapped
    (offsets 96, 104, 108), signed over those bytes."""
    from fence_virt.protocol.auth import keyed_digest

    data = bytearray(request.encode())
    for offset, size in ((96, 2), (104, 4), (108, 4)):
        data[offset : offset + size] = data[offset : offset + size][::-1]
    data[112:] = bytes(64)
    data[112:] = keyed_digest(HashType.SHA256, key, bytes(data))
    return bytes(data)


def test_a_big_endian_request_is_read_big_endian_and_served() -> None:
    accepted = check_datagram(big_endian(signed()), KEY, HashType.SHA256)
    assert accepted.swapped is True
    assert (accepted.host, accepted.port, accepted.request.seqno) == ("198.51.100.11", 1229, 123456)
    assert accepted.request.domain == "vm1"
    assert check_datagram(signed().encode(), KEY, HashType.SHA256).swapped is False


def test_a_big_endian_request_with_an_undecodable_domain_stays_unservable() -> None:
    request = FenceRequest.build(
        Operation.OFF, "", hashtype=HashType.SHA256, seqno=7, address=ip_address("10.0.0.1"),
        port=1229,
    )  # fmt: skip
    data = bytearray(big_endian(request))
    data[4:68] = b"caf\xe9" + bytes(60)
    data[112:] = bytes(64)
    from fence_virt.protocol.auth import keyed_digest

    data[112:] = keyed_digest(HashType.SHA256, KEY, bytes(data))
    accepted = check_datagram(bytes(data), KEY, HashType.SHA256)
    assert accepted.unservable is not None
    assert (accepted.unservable.domain, accepted.request.seqno, accepted.port) == (
        b"caf\xe9",
        7,
        1229,
    )


def test_a_big_endian_request_is_refused_when_configured() -> None:
    with pytest.raises(ProtocolError, match=r"byte-swapped request from a big-endian client"):
        check_datagram(big_endian(signed()), KEY, HashType.SHA256, serve_swapped=False)


def test_a_forged_big_endian_request_still_fails_its_signature() -> None:
    data = bytearray(big_endian(signed()))
    data[5] ^= 1
    with pytest.raises(AuthenticationError):
        check_datagram(bytes(data), KEY, HashType.SHA256)
