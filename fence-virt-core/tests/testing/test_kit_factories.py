"""The codec factories build what the product's own decoder accepts, and the malformed ones
what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.errors import AuthenticationError, RemoteError
from fence_virt.protocol import (
    FENCE_REQ_SIZE,
    HashType,
    Operation,
    SerialRequest,
    verify_request,
)
from fence_virt.testing.factories import (
    KEY_SIZE,
    fence_datagram,
    fence_request,
    malformed_fence_datagrams,
    new_key,
    other_key,
    serial_request,
    write_key,
)


def test_a_datagram_verifies_with_its_key_and_carries_the_connect_back() -> None:
    key = new_key()
    assert len(key) == KEY_SIZE
    data = fence_datagram(Operation.OFF, "vm1", key=key, seqno=7, address="198.51.100.4", port=1300)
    assert len(data) == FENCE_REQ_SIZE
    request = verify_request(data, key, HashType.SHA256)
    assert (request.operation, request.domain, request.seqno) == (Operation.OFF, "vm1", 7)
    assert request.connect_back() == ("198.51.100.4", 1300)
    assert not request.by_uuid


def test_each_request_is_signed_afresh_and_only_the_right_key_verifies() -> None:
    key = new_key(16)
    first = fence_request(Operation.REBOOT, "vm1", key=key, hashtype=HashType.SHA512)
    again = fence_request(Operation.REBOOT, "vm1", key=key, hashtype=HashType.SHA512)
    assert first.hash != again.hash
    assert first.by_uuid is False
    assert first.family == 0, "no address: a request sent on a stream"
    with pytest.raises(AuthenticationError):
        verify_request(first.encode(), other_key(key), HashType.SHA256)
    assert other_key(key) != key
    assert len(other_key(key)) == len(key)
    assert fence_request(Operation.ON, "u", key=key, by_uuid=True).by_uuid


def test_malformed_datagrams_are_all_refused() -> None:
    key = new_key()
    bad = malformed_fence_datagrams(key)
    assert len(set(bad)) == len(bad) == 6
    for data in bad:
        with pytest.raises(RemoteError):
            verify_request(data, key, HashType.SHA256)


def test_serial_requests_decode_as_written() -> None:
    data = serial_request(Operation.STATUS, "vm2", seqno=9, by_uuid=True)
    decoded = SerialRequest.decode(data, strict=True)
    assert (decoded.operation, decoded.domain, decoded.seqno, decoded.flags) == (
        Operation.STATUS,
        "vm2",
        9,
        1,
    )


def test_key_files_are_written_private(tmp_path: Path) -> None:
    path = write_key(tmp_path / "k", b"secret")
    assert path.read_bytes() == b"secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(write_key(tmp_path / "random").read_bytes()) == KEY_SIZE
