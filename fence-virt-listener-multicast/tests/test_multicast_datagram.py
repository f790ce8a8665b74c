"""Datagram checks before any connect-back, the replay guard and the rate-limited drop log."""

from __future__ import annotations

import logging
from dataclasses import replace
from ipaddress import ip_address

import pytest

from fence_virt.errors import AuthenticationError, ProtocolError, RemoteError
from fence_virt.protocol import FenceRequest, HashType, Operation, sign_request
from fence_virt_listener_multicast.datagram import ReplayGuard, check_datagram
from fence_virt_listener_multicast.droplog import DropLog

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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_replay_guard_remembers_served_signatures_for_its_window() -> None:
    clock = Clock()
    guard = ReplayGuard(window=600, capacity=10, clock=clock)
    first, other = signed(), signed()
    assert first.hash != other.hash, "every signing draws fresh random bytes"
    assert guard.age(first) is None
    guard.remember(first)
    clock.now += 30
    assert guard.age(first) == 30
    assert guard.age(other) is None
    clock.now += 600
    assert guard.age(first) is None
    assert len(guard) == 0


def test_replay_guard_is_bounded_and_ignores_unsigned_requests() -> None:
    guard = ReplayGuard(window=600, capacity=3, clock=Clock())
    requests = [signed() for _ in range(5)]
    for request in requests:
        guard.remember(request)
    assert len(guard) == 3
    assert guard.age(requests[0]) is None
    assert guard.age(requests[4]) == 0
    unsigned = signed(HashType.NONE)
    guard.remember(unsigned)
    assert guard.age(unsigned) is None


def test_drop_log_limits_a_flood_and_counts_what_it_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("test.droplog")
    scheduled: list[tuple[float, object]] = []
    drops = DropLog(
        logger, rate=1.0, burst=3, clock=clock, schedule=lambda d, f: scheduled.append((d, f))
    )
    with caplog.at_level(logging.WARNING, logger="test.droplog"):
        for n in range(10):
            drops.drop(f"198.51.100.9:{n}", "garbage")
        clock.now += 1.0
        drops.drop("198.51.100.9:99", "garbage")
        for _ in range(4):
            drops.drop("198.51.100.9:100", "garbage")
        assert [delay for delay, _ in scheduled] == [10.0, 10.0]
        drops.flush()
        drops.flush()
    lines = caplog.messages
    assert lines[:3] == [f"dropped datagram from 198.51.100.9:{n}: garbage" for n in range(3)]
    assert lines[3] == "dropped datagram from 198.51.100.9:99: garbage (7 more drops not logged)"
    assert lines[4:] == ["4 more dropped datagrams not logged"]
