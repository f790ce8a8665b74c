"""Property tests: round trips, and untrusted bytes only ever raise ProtocolError.

The verifier's properties compare its verdict with an oracle written here from the spec
(c-suite-spec §2.4: the 176 bytes, hash type at byte 1, H(key ‖ bytes with the hash field
zeroed) in the last 64), with hashlib's digests: a verifier that accepts everything, or
refuses everything, fails them."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fence_virt.errors import AuthenticationError, ProtocolError
from fence_virt.protocol import (
    FenceRequest,
    HashType,
    HostListDecoder,
    HostState,
    SerialRequest,
    SerialResponse,
    SerialResponseScanner,
    encode_hostlist,
    encode_serial_hostlist,
    sign_request,
    verify_request,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
#: names that fit a 64-byte C string field: ASCII up to 63 chars, or up to 15 of any width
names = st.one_of(
    st.text(st.characters(codec="ascii", exclude_characters="\0"), max_size=63),
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=15),
)
fence_requests = st.builds(
    FenceRequest,
    request=u8,
    hashtype=u8,
    addrlen=u8,
    flags=u8,
    domain=names,
    address=st.binary(min_size=28, max_size=28),
    port=u16,
    random=st.binary(min_size=6, max_size=6),
    seqno=u32,
    family=u32,
    hash=st.binary(min_size=64, max_size=64),
)
host_states = st.builds(HostState, domain=names, uuid=names, state=u8).filter(
    lambda s: not s.is_terminator
)
serial_requests = st.builds(
    SerialRequest,
    request=u8,
    domain=names,
    seqno=u32,
    flags=u8,
    magic=st.binary(min_size=4, max_size=4),
)
keys = st.binary(min_size=1, max_size=80)
signed_types = st.sampled_from([HashType.SHA1, HashType.SHA256, HashType.SHA512])


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` split at random points."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def resized(data: bytes, size: int, filler: bytes) -> bytes:
    return (data + filler * size)[:size]


# --- fence_req_t -----------------------------------------------------------------------


@given(fence_requests)
def test_fence_request_round_trip(req):
    data = req.encode()
    assert len(data) == 176
    assert FenceRequest.decode(data) == req


@given(fence_requests, st.integers(0, 400).filter(lambda n: n != 176), st.binary(min_size=1))
def test_fence_request_wrong_sizes(req, size, filler):
    try:
        FenceRequest.decode(resized(req.encode(), size, filler))
    except ProtocolError:
        return
    raise AssertionError("decoded a request of the wrong size")


@given(st.binary(min_size=176, max_size=176))
def test_fence_request_random_bytes(data):
    try:
        req = FenceRequest.decode(data)
    except ProtocolError:
        return
    assert FenceRequest.decode(req.encode()) == req


_ORACLE_DIGESTS = {HashType.SHA1: "sha1", HashType.SHA256: "sha256", HashType.SHA512: "sha512"}


def oracle_accepts(data: bytes, key: bytes, minimum: HashType) -> bool:
    """Whether a request must verify: the spec's rule, computed independently."""
    if len(data) != 176 or data[1] not in iter(HashType) or data[1] < minimum:
        return False
    if data[1] == HashType.NONE:
        return True
    if not key:
        return False
    signed = data[:112] + bytes(64)
    expected = hashlib.new(_ORACLE_DIGESTS[HashType(data[1])], key + signed).digest()
    return data[112:] == expected.ljust(64, b"\0")


def check_verdict(data: bytes, key: bytes, minimum: HashType) -> None:
    """``verify_request`` accepts exactly what the oracle accepts, and says why not."""
    if oracle_accepts(data, key, minimum):
        try:
            decoded = FenceRequest.decode(data)
        except ProtocolError:
            with pytest.raises(ProtocolError):  # authentic, but a field does not decode
                verify_request(data, key, minimum)
            return
        assert verify_request(data, key, minimum) == decoded
        return
    expected = ProtocolError if len(data) != 176 else AuthenticationError
    with pytest.raises(expected):
        verify_request(data, key, minimum)


#: mostly 176 bytes (the only length that can verify), sometimes any other length
request_bytes = st.one_of(
    st.binary(min_size=176, max_size=176), st.binary(max_size=400), st.binary(min_size=177)
)


@given(request_bytes, keys, st.sampled_from(list(HashType)))
def test_verify_random_bytes(data, key, minimum):
    check_verdict(data, key, minimum)


@given(fence_requests, st.sampled_from(list(HashType)), keys, st.sampled_from(list(HashType)))
def test_sign_then_verify(req, hashtype, key, minimum):
    """Refused exactly when weaker than the minimum; else the request comes back."""
    signed = sign_request(replace(req, hashtype=hashtype), key)
    data = signed.encode()
    assert oracle_accepts(data, key, minimum) == (hashtype >= minimum)
    if signed.hashtype < minimum:
        with pytest.raises(AuthenticationError, match="weaker than required"):
            verify_request(data, key, minimum)
        return
    assert verify_request(data, key, minimum) == signed


@given(fence_requests, signed_types, keys, keys)
def test_a_request_signed_with_another_key_is_refused(req, hashtype, key, other):
    data = sign_request(replace(req, hashtype=hashtype), key).encode()
    if other == key:
        assert verify_request(data, other, HashType.SHA1).domain == req.domain
        return
    with pytest.raises(AuthenticationError, match="signature mismatch"):
        verify_request(data, other, HashType.SHA1)


@given(fence_requests, signed_types, keys, st.sampled_from(list(HashType)))
def test_a_signed_request_with_its_hash_type_changed_is_refused_or_weaker(
    req, hashtype, key, minimum
):
    """Byte 1 rewritten to another type: the signature no longer matches, and NONE (which
    carries no signature) passes only where the minimum is NONE."""
    data = bytearray(sign_request(replace(req, hashtype=hashtype), key).encode())
    for other in HashType:
        if other is hashtype:
            continue
        data[1] = other
        check_verdict(bytes(data), key, minimum)


@given(fence_requests, keys, signed_types, st.integers(0, 175), st.integers(1, 255))
def test_tampering_detected(req, key, hashtype, offset, flip):
    data = bytearray(sign_request(replace(req, hashtype=hashtype), key).encode())
    data[offset] ^= flip
    try:
        verify_request(bytes(data), key, HashType.SHA1)
    except (AuthenticationError, ProtocolError):
        return
    raise AssertionError(f"tampered byte {offset} accepted")


# --- host list -------------------------------------------------------------------------


@given(host_states)
def test_host_state_round_trip(state):
    assert HostState.decode(state.encode()) == state


@given(st.binary(min_size=130, max_size=130))
def test_host_state_random_bytes(data):
    """Any record decodes (invalid UTF-8 becomes U+FFFD) and re-encodes to 130 bytes."""
    state = HostState.decode(data)
    assert "\0" not in state.domain + state.uuid
    assert len(state.encode()) == 130


@given(st.binary(max_size=300))
def test_host_state_wrong_sizes(data):
    if len(data) == 130:
        assert len(HostState.decode(data).encode()) == 130
        return
    with pytest.raises(ProtocolError):
        HostState.decode(data)


@given(st.data(), st.lists(host_states, max_size=5), u8, st.booleans())
def test_hostlist_stream_in_chunks(data, states, result, serial):
    encode = encode_serial_hostlist if serial else encode_hostlist
    decoder = HostListDecoder(serial=serial)
    got: list[HostState] = []
    for chunk in data.draw(chunked(encode(states, result))):
        got += decoder.feed(chunk)
    assert got == states
    assert (decoder.done, decoder.response, decoder.result) == (True, 0xFD, result)


@given(st.data(), st.binary(max_size=1000), st.booleans())
def test_hostlist_decoder_random_bytes(data, noise, serial):
    decoder = HostListDecoder(serial=serial)
    for chunk in data.draw(chunked(noise)):
        for state in decoder.feed(chunk):
            assert isinstance(state, HostState)


# --- serial ----------------------------------------------------------------------------


@given(serial_requests)
def test_serial_request_round_trip(req):
    data = req.encode()
    assert len(data) == 74
    assert SerialRequest.decode(data) == req


@given(st.binary(max_size=200), st.booleans())
def test_serial_request_random_bytes(data, strict):
    try:
        req = SerialRequest.decode(data, strict=strict)
    except ProtocolError:
        return
    assert len(data) == 74
    assert req.encode()[:6] == data[:6]


@given(u8)
def test_serial_response_round_trip(code):
    assert SerialResponse.decode(SerialResponse(code).encode()) == SerialResponse(code)


@given(st.one_of(st.binary(max_size=20), st.binary(max_size=1).map(lambda b: b"abba" + b)))
def test_serial_response_random_bytes(data):
    """Exactly 5 bytes starting with the magic decode, to their last byte; nothing else."""
    if len(data) == 5 and data[:4] == SerialResponse(0).encode()[:4]:
        assert SerialResponse.decode(data) == SerialResponse(data[4])
        return
    with pytest.raises(ProtocolError):
        SerialResponse.decode(data)


@given(st.data(), st.binary(max_size=200).filter(lambda b: b"a" not in b), u8, st.binary())
def test_scanner_finds_response_in_noise(data, noise, code, tail):
    scanner = SerialResponseScanner()
    found = None
    stream = noise + SerialResponse(code).encode() + tail
    for chunk in data.draw(chunked(stream)):
        if found is None:
            found = scanner.feed(chunk)
            rest = scanner.unused_data
        else:
            rest += chunk
    assert found == SerialResponse(code)
    assert scanner.skipped == len(noise)
    assert rest == tail


@given(st.data(), st.binary(max_size=1000))
def test_scanner_random_bytes(data, noise):
    scanner = SerialResponseScanner()
    for chunk in data.draw(chunked(noise)):
        if scanner.done:
            break
        scanner.feed(chunk)
