"""Golden vectors: traffic of the real C fence_xvm / fence_virt / fence_virtd 4.12.1."""

from __future__ import annotations

import pytest

from fence_virt.errors import AuthenticationError, ProtocolError
from fence_virt.protocol import (
    AuthExchange,
    FenceRequest,
    HashType,
    HostListDecoder,
    HostState,
    Operation,
    check_challenge_response,
    sign_request,
    verify_request,
)

H = bytes.fromhex
LOOPBACK = b"\x7f\x00\x00\x01" + bytes(24)


def split_client_host(conn, *, client_is_initiator):
    """(client bytes, host bytes) of a connection, minus a leading TCP request."""
    if client_is_initiator:
        return conn.from_initiator[176:], conn.from_acceptor
    return conn.from_acceptor, conn.from_initiator


def handshake(conn, *, client_is_initiator=False):
    """C1, R1, C2, R2 and the bytes after the exchange (result or host list)."""
    client, host = split_client_host(conn, client_is_initiator=client_is_initiator)
    assert len(client) == 128
    return client[:64], host[:64], host[64:128], client[64:128], host[128:]


# --- vec capture: key known, everything verifies ---------------------------------------


def test_vec_capture_shape(vec_capture):
    """Two multicast requests, each answered on a connect-back to the client's port 1229."""
    assert len(vec_capture.udp_requests) == 2
    assert [c.acceptor_port for c in vec_capture.connections] == [1229, 1229]


def test_vec_off_request_fields(vec_capture):
    """The recipes.md vector decodes field by field."""
    req = FenceRequest.decode(vec_capture.udp_requests[0])
    assert req.operation is Operation.OFF
    assert req.hash_type is HashType.SHA256
    assert (req.addrlen, req.flags, req.domain) == (4, 0, "test")
    assert req.address == LOOPBACK
    assert req.connect_back() == ("127.0.0.1", 1229)
    assert req.random == H("905713c5799e")
    assert req.seqno == 8451  # fvd-vec.log: "Request 1 seqno 8451 domain test"
    assert req.family == 2
    assert req.hash[:32] == H("5113496da596afa4dd1d8801319c968dfaa4bb668dfa619f6cfa006a7f805420")
    assert req.hash[32:] == bytes(32)


def test_vec_list_request_fields(vec_capture):
    req = FenceRequest.decode(vec_capture.udp_requests[1])
    assert req.operation is Operation.HOSTLIST
    assert req.domain == ""
    assert req.seqno == 13740  # fvd-vec.log: "Request 6 seqno 13740 domain"
    assert req.connect_back() == ("127.0.0.1", 1229)


@pytest.mark.parametrize("index", [0, 1])
def test_vec_requests_reencode_and_verify(vec_capture, vec_key, index):
    data = vec_capture.udp_requests[index]
    req = verify_request(data, vec_key, HashType.SHA256)
    assert req.encode() == data
    assert sign_request(req, vec_key, nonce=req.random) == req


@pytest.mark.parametrize("index", [0, 1])
def test_vec_requests_fail_with_another_key(vec_capture, vec_key, index):
    """§9.1 item 3: one changed key byte and the signature no longer verifies."""
    other = bytes([vec_key[0] ^ 1]) + vec_key[1:]
    with pytest.raises(AuthenticationError, match="mismatch"):
        verify_request(vec_capture.udp_requests[index], other, HashType.SHA256)
    with pytest.raises(AuthenticationError, match="mismatch"):
        verify_request(vec_capture.udp_requests[index], vec_key.rstrip(b"\n"), HashType.SHA256)


def test_vec_requests_rejected_by_stricter_minimum(vec_capture, vec_key):
    with pytest.raises(AuthenticationError, match="sha256 weaker than required sha512"):
        verify_request(vec_capture.udp_requests[0], vec_key, HashType.SHA512)


@pytest.mark.parametrize("index", [0, 1])
def test_vec_challenges_verify(vec_capture, vec_key, index):
    c1, r1, c2, r2, _rest = handshake(vec_capture.connections[index])
    assert check_challenge_response(HashType.SHA256, vec_key, c1, r1)
    assert check_challenge_response(HashType.SHA256, vec_key, c2, r2)
    assert not check_challenge_response(HashType.SHA256, vec_key + b"x", c1, r1)
    assert not check_challenge_response(HashType.SHA512, vec_key, c1, r1)


def test_vec_challenge_values(vec_capture):
    """The exchange printed in recipes.md."""
    c1, r1, c2, r2, rest = handshake(vec_capture.connections[0])
    assert c1.startswith(H("290a5d6ae49e5500d187fca507ce38ff"))
    assert r1 == H("0444673209d74456ff0f6292d606f6d7f41ab7cae1855432d00334d39bae8fe6") + bytes(32)
    assert c2.startswith(H("ee0b254b6213455fe92d7af8a3be5052"))
    assert r2 == H("e2686f4c87c32efbf026885b7667ed64a9ef77cec50db6dd6be4931de1fb07a7") + bytes(32)
    assert rest == b"\x00"


@pytest.mark.parametrize("index", [0, 1])
def test_vec_replay_as_client(vec_capture, vec_key, index):
    """Our client side, given the C client's challenge, says exactly what the C client said."""
    c1, r1, c2, r2, rest = handshake(vec_capture.connections[index])
    exchange = AuthExchange.for_client(HashType.SHA256, vec_key, challenge=c1)
    assert exchange.data_to_send() == c1
    exchange.receive_data(r1 + c2 + rest)
    assert exchange.data_to_send() == r2
    assert exchange.done
    assert exchange.unused_data == rest


@pytest.mark.parametrize("index", [0, 1])
def test_vec_replay_as_host(vec_capture, vec_key, index):
    """Our host side, given the C host's challenge, says exactly what the C host said."""
    c1, r1, c2, r2, _rest = handshake(vec_capture.connections[index])
    exchange = AuthExchange.for_host(HashType.SHA256, vec_key, challenge=c2)
    assert exchange.bytes_needed == 64
    exchange.receive_data(c1)
    assert exchange.data_to_send() == r1 + c2
    exchange.receive_data(r2)
    assert exchange.done


def test_vec_hostlist(vec_capture):
    *_, rest = handshake(vec_capture.connections[1])
    assert len(rest) == 1 + 2 * 130 + 1
    decoder = HostListDecoder()
    states = decoder.feed(rest)
    assert states == [HostState("test", "6695eb01-f6a4-8304-79aa-97f2502e193f", 5)]
    assert decoder.done
    assert decoder.response == 0xFD
    assert decoder.result == 0


def test_vec_hostlist_record_has_c_garbage(vec_capture):
    """recipes.md: domain[63], uuid[63] and pad carry stale stack bytes; decoding ignores them."""
    *_, rest = handshake(vec_capture.connections[1])
    record = rest[1:131]
    assert (record[63], record[127], record[129]) == (0x33, 0xA5, 0xFE)
    assert HostState.decode(record).encode() != record
    assert HostState.decode(HostState.decode(record).encode()) == HostState.decode(record)


# --- cap-status capture: key not available, decode only -------------------------------


def test_status_capture_requests(status_capture, vec_key):
    status, listing = (FenceRequest.decode(d) for d in status_capture.udp_requests)
    assert status.operation is Operation.STATUS
    assert status.domain == "vm3-with-a-long-name-0123456789"
    assert (status.hashtype, status.addrlen, status.family) == (HashType.SHA256, 4, 2)
    assert status.connect_back() == ("127.0.0.1", 1229)
    assert status.random == H("aec1f4e16d17")
    assert status.seqno == 202287
    assert listing.operation is Operation.HOSTLIST
    assert listing.seqno == 711526
    for data in status_capture.udp_requests:
        assert FenceRequest.decode(data).encode() == data
        assert FenceRequest.decode(data).hash[32:] == bytes(32)
        # signed with the 4096-byte random key of recipes.md §2, which was not kept
        with pytest.raises(AuthenticationError):
            verify_request(data, vec_key, HashType.SHA256)


def test_status_capture_exchange_shape(status_capture):
    for conn in status_capture.connections:
        _c1, r1, _c2, r2, _rest = handshake(conn)
        assert r1[32:] == bytes(32)
        assert r2[32:] == bytes(32)
    assert handshake(status_capture.connections[0])[4] == b"\x00"


def test_status_capture_hostlist(status_capture):
    """testnode.xml's three VMs; the 0xFD header came in its own segment."""
    conn = status_capture.connections[1]
    assert ("i", 1) in conn.segments
    *_, rest = handshake(conn)
    decoder = HostListDecoder()
    states = []
    for i in range(len(rest)):
        states += decoder.feed(rest[i : i + 1])
    assert states == [
        HostState("vm1", "11111111-1111-1111-1111-111111111111", 5),
        HostState("vm2", "22222222-2222-2222-2222-222222222222", 5),
        HostState("vm3-with-a-long-name-0123456789", "33333333-3333-3333-3333-333333333333", 1),
    ]
    assert decoder.done
    assert decoder.result == 0
    record = rest[1:131]
    assert (record[63], record[127], record[129]) == (0x32, 0x5C, 0x0E)


# --- cap-tcp capture: key not available, decode only ----------------------------------


def test_tcp_capture_request(tcp_capture):
    (conn,) = tcp_capture.connections
    assert conn.acceptor_port == 1229
    data = conn.from_initiator[:176]
    req = FenceRequest.decode(data)
    assert req.operation is Operation.STATUS
    assert req.hash_type is HashType.SHA256
    assert (req.addrlen, req.flags, req.domain, req.port, req.family) == (0, 0, "test", 0, 0)
    assert req.address == bytes(28)
    assert req.random == H("9f36dab102e2")
    assert req.seqno == 767185
    assert req.encode() == data
    with pytest.raises(ProtocolError, match="family 0"):
        req.connect_back()


def test_tcp_capture_exchange(tcp_capture):
    """The TCP client also challenges first; then one result byte (0: ON)."""
    (conn,) = tcp_capture.connections
    _c1, r1, _c2, r2, rest = handshake(conn, client_is_initiator=True)
    assert r1[32:] == bytes(32)
    assert r2[32:] == bytes(32)
    assert rest == b"\x00"
    assert [d for d, _n in conn.segments] == ["i", "i", "a", "a", "i", "a"]
