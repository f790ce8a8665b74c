"""Request signatures, challenge digests and the four-step exchange."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from fence_virt.errors import AuthenticationError, LocalError, ProtocolError
from fence_virt.protocol import (
    AuthExchange,
    FenceRequest,
    HashType,
    Operation,
    UnservableRequest,
    challenge_response,
    check_challenge_response,
    exchange_required,
    new_challenge,
    sign_request,
    verify_request,
)
from fence_virt.testing.factories import raw_domain_request

KEY = bytes(range(256)) * 16
DIGESTS = {
    HashType.SHA1: hashlib.sha1,
    HashType.SHA256: hashlib.sha256,
    HashType.SHA512: hashlib.sha512,
}
SIGNED_TYPES = list(DIGESTS)


def request(hashtype: HashType = HashType.SHA256) -> FenceRequest:
    return FenceRequest.build(Operation.OFF, "vm1", hashtype=hashtype, seqno=42)


@pytest.mark.parametrize("hashtype", SIGNED_TYPES)
def test_signature_is_prefix_hash_padded_to_64(hashtype):
    """§9.1 item 2."""
    signed = sign_request(request(hashtype), KEY)
    data = signed.encode()
    digest = DIGESTS[hashtype](KEY + data[:112] + bytes(64)).digest()
    assert data[112:] == digest.ljust(64, b"\0")
    assert len(digest) == hashtype.digest_size
    assert verify_request(data, KEY, HashType.SHA1) == signed


def test_signing_refreshes_random():
    randoms = {sign_request(request(), KEY).random for _ in range(8)}
    assert len(randoms) == 8


def test_hash_none_zeroes_random_and_hash():
    req = replace(request(HashType.NONE), random=b"abcdef", hash=b"x" * 64)
    signed = sign_request(req, KEY)
    assert (signed.random, signed.hash) == (bytes(6), bytes(64))


def test_sign_unknown_hashtype_is_a_local_error():
    with pytest.raises(LocalError, match="unknown hash type 9"):
        sign_request(FenceRequest(request=1, hashtype=9), KEY)


def test_empty_key_signs_but_never_verifies():
    """C: an empty key signs; the host rejects every hashed request for lack of key data."""
    data = sign_request(request(), b"").encode()
    with pytest.raises(AuthenticationError, match="no key material"):
        verify_request(data, b"", HashType.SHA256)


@pytest.mark.parametrize(
    ("sent", "minimum", "accepted"),
    [
        (HashType.NONE, HashType.SHA256, False),
        (HashType.SHA1, HashType.SHA256, False),
        (HashType.SHA256, HashType.SHA256, True),
        (HashType.SHA512, HashType.SHA256, True),
        (HashType.NONE, HashType.NONE, True),
        (HashType.SHA1, HashType.NONE, True),
    ],
)
def test_minimum_hash_rule(sent, minimum, accepted):
    """§9.1 item 4: the minimum compares with <, stronger hashes pass."""
    data = sign_request(request(sent), KEY).encode()
    if accepted:
        assert verify_request(data, KEY, minimum).hashtype == sent
    else:
        with pytest.raises(AuthenticationError, match=f"{sent.label} weaker than required"):
            verify_request(data, KEY, minimum)


def test_unknown_hashtype_rejected():
    data = bytearray(sign_request(request(), KEY).encode())
    data[1] = 7
    with pytest.raises(AuthenticationError, match="unknown hash type 7"):
        verify_request(bytes(data), KEY, HashType.NONE)


def test_verify_hashes_bytes_as_received():
    """Junk after the domain's NUL is covered by the signature although decoding drops it."""
    req = request()
    raw = bytearray(req.encode())
    raw[4 + 10] = 0x55
    digest = hashlib.sha256(KEY + bytes(raw)).digest()
    raw[112:144] = digest
    verified = verify_request(bytes(raw), KEY, HashType.SHA256)
    assert verified.domain == "vm1"
    assert verified.encode() != bytes(raw)


@pytest.mark.parametrize("offset", [0, 3, 70, 97, 100, 107, 111, 112, 150, 175])
def test_any_changed_byte_breaks_the_signature(offset):
    """Including the zero padding of the hash field (all 64 bytes are compared)."""
    data = bytearray(
        sign_request(request(HashType.SHA512 if offset == 0 else HashType.SHA256), KEY).encode()
    )
    data[offset] ^= 0x04
    with pytest.raises(AuthenticationError):
        verify_request(bytes(data), KEY, HashType.SHA256)


def test_mismatch_message_does_not_leak_expected_digest():
    data = bytearray(sign_request(request(), KEY).encode())
    data[150] ^= 1
    expected = hashlib.sha256(KEY + bytes(data[:112]) + bytes(64)).digest()
    with pytest.raises(AuthenticationError) as info:
        verify_request(bytes(data), KEY, HashType.SHA256)
    text = str(info.value)
    assert "signature mismatch (wrong key?)" in text
    assert expected.hex()[:8] not in text
    assert "\\x" not in text


def test_verify_wrong_length_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="got 175"):
        verify_request(bytes(175), KEY, HashType.NONE)


def test_verified_request_must_still_decode():
    data = bytearray(bytes(176))
    data[4:68] = b"\xff" * 64
    with pytest.raises(ProtocolError) as caught:
        verify_request(bytes(data), KEY, HashType.NONE)
    assert isinstance(caught.value, UnservableRequest), "hash none: verified, so answered"


# --- challenge / response -------------------------------------------------------------


def test_new_challenge():
    a, b = new_challenge(), new_challenge()
    assert len(a) == len(b) == 64
    assert a != b


@pytest.mark.parametrize("auth", SIGNED_TYPES)
def test_challenge_response_digest(auth):
    challenge = new_challenge()
    response = challenge_response(auth, KEY, challenge)
    assert response == DIGESTS[auth](KEY + challenge).digest().ljust(64, b"\0")
    assert check_challenge_response(auth, KEY, challenge, response)
    assert not check_challenge_response(auth, KEY[:-1], challenge, response)
    assert not check_challenge_response(auth, KEY, challenge, response[:-1] + b"\1")
    assert not check_challenge_response(auth, KEY, challenge, response[:32])


def test_empty_key_challenge_is_over_the_challenge_alone():
    challenge = bytes(64)
    assert (
        challenge_response(HashType.SHA256, b"", challenge)[:32]
        == hashlib.sha256(challenge).digest()
    )


def test_short_challenge_from_peer_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="got 63"):
        challenge_response(HashType.SHA256, KEY, bytes(63))


def test_challenge_with_auth_none_is_a_local_error():
    assert not exchange_required(HashType.NONE)
    assert all(exchange_required(a) for a in SIGNED_TYPES)
    with pytest.raises(LocalError):
        challenge_response(HashType.NONE, KEY, bytes(64))


# --- AuthExchange ---------------------------------------------------------------------


def run_pair(client: AuthExchange, host: AuthExchange) -> None:
    """Shuttle bytes both ways until neither side has anything to say."""
    for _ in range(10):
        host.receive_data(client.data_to_send())
        client.receive_data(host.data_to_send())


@pytest.mark.parametrize("auth", SIGNED_TYPES)
def test_exchange_pair_succeeds(auth):
    client, host = AuthExchange.for_client(auth, KEY), AuthExchange.for_host(auth, KEY)
    assert client.bytes_needed == 0
    assert host.bytes_needed == 64
    run_pair(client, host)
    assert client.done
    assert host.done


def test_exchange_order_client_challenges_first():
    """§9.1 items 6-8: C1 →, ← H(C1), ← C2, H(C2) →."""
    c1, c2 = b"1" * 64, b"2" * 64
    client = AuthExchange.for_client(HashType.SHA256, KEY, challenge=c1)
    host = AuthExchange.for_host(HashType.SHA256, KEY, challenge=c2)
    assert host.data_to_send() == b""
    first = client.data_to_send()
    assert first == c1
    host.receive_data(first)
    second = host.data_to_send()
    assert second == challenge_response(HashType.SHA256, KEY, c1) + c2
    client.receive_data(second)
    third = client.data_to_send()
    assert third == challenge_response(HashType.SHA256, KEY, c2)
    host.receive_data(third + b"\x00")
    assert host.done
    assert client.done
    assert host.unused_data == b"\x00"


def test_exchange_wrong_key_fails_at_client_first():
    client = AuthExchange.for_client(HashType.SHA256, KEY)
    host = AuthExchange.for_host(HashType.SHA256, KEY + b"!")
    host.receive_data(client.data_to_send())
    with pytest.raises(AuthenticationError, match="invalid response to challenge"):
        client.receive_data(host.data_to_send())
    assert not client.done
    with pytest.raises(LocalError):
        client.receive_data(b"")


def test_exchange_host_rejects_bad_client_answer():
    host = AuthExchange.for_host(HashType.SHA256, KEY)
    host.receive_data(new_challenge())
    host.data_to_send()
    with pytest.raises(AuthenticationError):
        host.receive_data(bytes(64))


def test_exchange_mismatched_auth_types_fail():
    client = AuthExchange.for_client(HashType.SHA256, KEY)
    host = AuthExchange.for_host(HashType.SHA512, KEY)
    with pytest.raises(AuthenticationError):
        run_pair(client, host)


def test_exchange_byte_by_byte():
    client = AuthExchange.for_client(HashType.SHA1, KEY)
    host = AuthExchange.for_host(HashType.SHA1, KEY)
    for _ in range(4):
        for byte in client.data_to_send():
            host.receive_data(bytes([byte]))
        for byte in host.data_to_send():
            assert client.bytes_needed > 0
            client.receive_data(bytes([byte]))
    assert client.done
    assert host.done


@pytest.mark.parametrize("factory", [AuthExchange.for_client, AuthExchange.for_host])
def test_exchange_auth_none_is_absent(factory):
    exchange = factory(HashType.NONE, b"")
    assert exchange.done
    assert exchange.data_to_send() == b""
    assert exchange.bytes_needed == 0
    exchange.receive_data(b"\x02")
    assert exchange.unused_data == b"\x02"


def test_exchange_rejects_bad_own_challenge():
    with pytest.raises(LocalError):
        AuthExchange.for_client(HashType.SHA256, KEY, challenge=b"short")


# --- authentic but unservable (issue 21, B6) ------------------------------------------


LATIN1 = b"caf\xe9"  # fence_xvm -H $'caf\xe9': a C agent sends the name byte for byte


@pytest.mark.parametrize(
    ("domain", "reason", "shown"),
    [
        (LATIN1, "domain is not valid UTF-8", "caf\\xe9"),
        (b"v" * 64, "domain field has no NUL terminator", "v" * 64),
        (b"\xff" * 64, "domain field has no NUL terminator", "\\xff" * 64),
    ],
    ids=["latin-1", "no-nul", "no-nul-not-utf8"],
)
def test_an_authentic_request_whose_domain_does_not_decode_is_unservable(domain, reason, shown):
    """Signed with the key, so a host answers it (FAIL) rather than dropping it."""
    data = raw_domain_request(Operation.OFF, domain, key=KEY, seqno=77, address="198.51.100.9")
    with pytest.raises(UnservableRequest, match=reason) as caught:
        verify_request(data, KEY, HashType.SHA256)
    problem = caught.value
    assert isinstance(problem, ProtocolError)
    assert problem.domain == domain
    assert problem.shown_domain == shown
    request = problem.request
    assert (request.request, request.seqno, request.domain) == (Operation.OFF, 77, "")
    assert request.connect_back() == ("198.51.100.9", 0)
    assert request.hash == data[112:]


@pytest.mark.parametrize(
    ("key", "minimum", "error"),
    [
        (bytes(reversed(KEY)), HashType.SHA256, "signature mismatch"),
        (KEY, HashType.SHA512, "weaker than required"),
    ],
    ids=["wrong-key", "weak-hash"],
)
def test_an_undecodable_domain_is_unservable_only_once_authenticated(key, minimum, error):
    """Authentication comes first: garbage from a stranger is never answered."""
    data = raw_domain_request(Operation.OFF, LATIN1, key=key)
    with pytest.raises(AuthenticationError, match=error):
        verify_request(data, KEY, minimum)


def test_an_unknown_operation_code_verifies_and_decodes():
    """Answered FAIL by the listeners (fence_virt.listening.answer), like C, not dropped."""
    data = sign_request(FenceRequest.build(99, "vm1", hashtype=HashType.SHA256, seqno=1), KEY)
    assert verify_request(data.encode(), KEY, HashType.SHA256).request == 99
