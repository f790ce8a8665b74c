"""fence_virt.listening.v2: which requests a listener's ``protocol`` mode serves."""

from __future__ import annotations

import pytest

from fence_virt.errors import AuthenticationError, ProtocolError
from fence_virt.listening.v2 import C_REFUSED, check_request, v2_window_problem, wants_v2
from fence_virt.protocol import FenceRequest, HashType, Operation, sign_request
from fence_virt.protocol.v2 import V2_HASHTYPE, ProtocolMode, sign_v2

KEY = b"k" * 64
NOW = 1_800_000_000.0


def _c_request() -> bytes:
    request = FenceRequest.build(Operation.OFF, "vm1", hashtype=HashType.SHA256, seqno=7)
    return sign_request(request, KEY).encode()


def _v2_request() -> bytes:
    request = FenceRequest.build(Operation.OFF, "vm1", hashtype=HashType.SHA256, seqno=7)
    return sign_v2(request, KEY, now=NOW).encode()


def _check(data: bytes, mode: ProtocolMode) -> FenceRequest:
    return check_request(data, KEY, HashType.SHA256, mode=mode, window=30, now=NOW)


def test_c_mode_serves_c_requests_and_refuses_v2_as_c_does() -> None:
    assert not wants_v2(_check(_c_request(), ProtocolMode.C))
    with pytest.raises(AuthenticationError, match="unknown hash type 32"):
        _check(_v2_request(), ProtocolMode.C)


def test_both_serves_each_kind_in_its_own_mode() -> None:
    assert not wants_v2(_check(_c_request(), ProtocolMode.BOTH))
    request = _check(_v2_request(), ProtocolMode.BOTH)
    assert wants_v2(request)
    assert request.hashtype == V2_HASHTYPE


def test_v2_only_refuses_c_requests_with_the_reason() -> None:
    assert wants_v2(_check(_v2_request(), ProtocolMode.V2))
    with pytest.raises(AuthenticationError) as refused:
        _check(_c_request(), ProtocolMode.V2)
    assert str(refused.value).startswith(C_REFUSED)
    assert "hash type 2" in str(refused.value)
    with pytest.raises(ProtocolError):
        _check(_c_request()[:-1], ProtocolMode.V2)


def test_a_stale_v2_request_is_refused_in_every_mode_that_takes_v2() -> None:
    for mode in (ProtocolMode.BOTH, ProtocolMode.V2):
        with pytest.raises(AuthenticationError, match="outside the 30 s window"):
            check_request(_v2_request(), KEY, HashType.SHA256, mode=mode, window=30, now=NOW + 31)


def test_the_replay_memory_must_cover_the_window_twice() -> None:
    assert v2_window_problem(30, 600) is None
    assert v2_window_problem(300, 600) is None
    assert v2_window_problem(301, 600) == "v2_window 301 must be at most half of replay_window 600"


def test_protocol_modes_read_by_name() -> None:
    assert ProtocolMode["V2"].accepts_v2
    assert not ProtocolMode["V2"].accepts_c
    assert ProtocolMode["BOTH"].accepts_v2
    assert ProtocolMode["BOTH"].accepts_c
    assert ProtocolMode["C"].accepts_c
    assert not ProtocolMode["C"].accepts_v2
