"""Protocol v2, sans-IO: the request tag and window, role-labelled proofs, sealed results."""

from __future__ import annotations

import pytest

from fence_virt.errors import AuthenticationError, ProtocolError
from fence_virt.protocol import FenceRequest, HashType, Operation, UnservableRequest
from fence_virt.protocol.auth import verify_request
from fence_virt.protocol.v2 import (
    DEFAULT_V2_WINDOW,
    NONCE_SIZE,
    V2_HASHTYPE,
    V2Client,
    V2Host,
    digest_of,
    is_v2,
    request_digest,
    request_time,
    result_length,
    sign_v2,
    verify_v2,
)

KEY = bytes(range(256)) * 16
NOW = 1_800_000_000.0


def _request(domain: str = "vm1", op: Operation = Operation.OFF) -> FenceRequest:
    return FenceRequest.build(op, domain, hashtype=HashType.SHA256, seqno=42)


def _signed(now: float = NOW, **kwargs: object) -> bytes:
    return sign_v2(_request(**kwargs), KEY, now=now).encode()  # type: ignore[arg-type]


def test_a_v2_request_verifies_and_keeps_its_fields() -> None:
    data = _signed()
    assert is_v2(data)
    assert data[1] == V2_HASHTYPE
    request = verify_v2(data, KEY, now=NOW + 1)
    assert (request.request, request.domain, request.seqno) == (Operation.OFF, "vm1", 42)
    assert request_time(request) == NOW
    assert request_digest(request) == digest_of(data)


def test_every_changed_byte_breaks_the_tag() -> None:
    data = _signed()
    for offset in range(len(data)):
        if offset == 1:
            continue  # the hash type: not v2 any more, refused for that
        forged = bytearray(data)
        forged[offset] ^= 0x01
        with pytest.raises(AuthenticationError):
            verify_v2(bytes(forged), KEY, now=NOW)


def test_the_timestamp_window_is_seconds_either_way() -> None:
    data = _signed()
    verify_v2(data, KEY, now=NOW + DEFAULT_V2_WINDOW - 0.5)
    verify_v2(data, KEY, now=NOW - DEFAULT_V2_WINDOW + 0.5)
    with pytest.raises(AuthenticationError, match="old, outside the 30 s window"):
        verify_v2(data, KEY, now=NOW + DEFAULT_V2_WINDOW + 1)
    with pytest.raises(AuthenticationError, match="in the future"):
        verify_v2(data, KEY, now=NOW - DEFAULT_V2_WINDOW - 1)
    with pytest.raises(AuthenticationError, match="outside the 5 s window"):
        verify_v2(data, KEY, now=NOW + 6, window=5)


def test_wrong_key_length_and_c_requests_are_refused() -> None:
    data = _signed()
    with pytest.raises(AuthenticationError, match="tag mismatch"):
        verify_v2(data, KEY[:-1] + b"x", now=NOW)
    with pytest.raises(AuthenticationError, match="no key"):
        verify_v2(data, b"", now=NOW)
    with pytest.raises(ProtocolError):
        verify_v2(data[:-1], KEY, now=NOW)
    with pytest.raises(AuthenticationError, match="not protocol v2"):
        verify_v2(_request().encode(), KEY, now=NOW)


def test_a_c_verifier_refuses_a_v2_request() -> None:
    """What a C daemon (and ours in C mode) does with one: an unknown hash type."""
    with pytest.raises(AuthenticationError, match="unknown hash type 32"):
        verify_request(_signed(), KEY, HashType.SHA256)


def test_an_authentic_undecodable_domain_is_unservable() -> None:
    """A Latin-1 name without NUL, tagged with the key: authentic, answered FAIL."""
    from fence_virt.protocol import v2

    signed = bytearray(_signed())
    signed[4:68] = b"\xe9" * 64
    signed[112:144] = v2._request_tag(KEY, bytes(signed))
    with pytest.raises(UnservableRequest):
        verify_v2(bytes(signed), KEY, now=NOW)


def _handshake(client_key: bytes = KEY, host_key: bytes = KEY) -> tuple[V2Client, V2Host, bytes]:
    digest = digest_of(_signed())
    client = V2Client(client_key, [digest])
    host = V2Host(host_key, digest)
    proof = client.check_host(host.answer_hello(client.hello()))
    host.check_client(proof)
    return client, host, digest


def test_a_full_exchange_opens_the_sealed_result() -> None:
    client, host, _ = _handshake()
    frame = host.seal_result(b"\x00")
    header, payload, tag = frame[:4], frame[4:-32], frame[-32:]
    assert result_length(header) == 1
    assert client.open_result(header, payload, tag) == b"\x00"


def test_a_forged_or_altered_result_is_refused() -> None:
    client, host, _ = _handshake()
    frame = host.seal_result(b"\x01")
    forged = frame[:4] + b"\x00" + frame[-32:]
    with pytest.raises(AuthenticationError, match="result MAC mismatch"):
        client.open_result(forged[:4], forged[4:5], forged[5:])
    with pytest.raises(AuthenticationError):
        client.open_result(frame[:4], b"\x01", bytes(32))


def test_a_result_sealed_on_another_connection_is_refused() -> None:
    client, _, digest = _handshake()
    other_client = V2Client(KEY, [digest])
    other_host = V2Host(KEY, digest)
    other_host.check_client(other_client.check_host(other_host.answer_hello(other_client.hello())))
    frame = other_host.seal_result(b"\x00")
    with pytest.raises(AuthenticationError):
        client.open_result(frame[:4], frame[4:5], frame[5:])


def test_a_host_without_the_key_cannot_prove_itself() -> None:
    digest = digest_of(_signed())
    client = V2Client(KEY, [digest])
    impostor = V2Host(b"not the key", digest)
    with pytest.raises(AuthenticationError, match="host proof mismatch"):
        client.check_host(impostor.answer_hello(client.hello()))


def test_a_host_proof_reflected_as_a_client_proof_is_refused() -> None:
    """Reflection: the attacker opens a second connection whose Nc is the first one's Nh
    and sends the host's proof from it back as its own: the labels differ."""
    digest = digest_of(_signed())
    first = V2Host(KEY, digest)
    nh_and_proof = first.answer_hello(bytes(NONCE_SIZE))
    second = V2Host(KEY, digest)
    reflected = second.answer_hello(nh_and_proof[:NONCE_SIZE])[NONCE_SIZE:]
    with pytest.raises(AuthenticationError, match="client proof mismatch"):
        first.check_client(reflected)
    with pytest.raises(AuthenticationError):
        first.check_client(nh_and_proof[NONCE_SIZE:])


def test_a_client_proof_reflected_as_a_host_proof_is_refused() -> None:
    digest = digest_of(_signed())
    victim = V2Client(KEY, [digest])
    nc = victim.hello()
    # a genuine client proof for (nc, nh), obtained elsewhere, offered as the host's proof
    other = V2Client(KEY, [digest], nonce=nc)
    helper = V2Host(KEY, digest, nonce=b"\x07" * NONCE_SIZE)
    client_proof = other.check_host(helper.answer_hello(nc))
    with pytest.raises(AuthenticationError, match="host proof mismatch"):
        victim.check_host(b"\x07" * NONCE_SIZE + client_proof)


def test_a_proof_for_another_request_is_refused() -> None:
    client = V2Client(KEY, [digest_of(_signed(domain="vm1"))])
    host = V2Host(KEY, digest_of(_signed(domain="vm2")))
    with pytest.raises(AuthenticationError):
        client.check_host(host.answer_hello(client.hello()))


def test_the_client_accepts_a_proof_for_any_request_of_its_run() -> None:
    sent = [digest_of(_signed(now=NOW + i)) for i in range(3)]
    client = V2Client(KEY, sent)
    host = V2Host(KEY, sent[1])
    host.check_client(client.check_host(host.answer_hello(client.hello())))
    frame = host.seal_result(b"\x02")
    assert client.open_result(frame[:4], frame[4:5], frame[5:]) == b"\x02"


def test_result_lengths_are_bounded() -> None:
    with pytest.raises(ProtocolError):
        result_length(b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError):
        result_length(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolError):
        result_length(b"\x01")
