"""The stream session (handshake, answer, reply) over in-memory streams (a socketpair).

The client side is the codec's own ``AuthExchange.for_client``, the same driver our fence_xvm
uses. The dispatcher is a recording stand-in for core's (the kit's ``RecordingDispatcher``):
this file tests the listener's side of the Dispatcher contract (what it asks for, what it
sends back); the real dispatcher and backends are exercised through ``fence_virtd`` in the
multicast listener's namespace tests.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address

import pytest

from fence_virt import Dispatcher, Target
from fence_virt.errors import AuthenticationError, ProtocolError, RemoteError
from fence_virt.listening import Credentials, SocketChannel, receive_request, serve
from fence_virt.protocol import (
    AuthExchange,
    FenceRequest,
    HashType,
    HostListDecoder,
    HostState,
    Operation,
    RequestFlag,
    Response,
)
from fence_virt.testing import client_session
from fence_virt.testing.factories import fence_request

KEY = b"shared key\n"
#: the requester identity the listener vouches for (here: a multicast connect-back address)
REQUESTER = "198.51.100.11"


def accepted(operation: int, domain: str = "vm1", *, flags: int = 0) -> FenceRequest:
    return FenceRequest.build(
        operation,
        domain,
        hashtype=HashType.SHA256,
        seqno=777,
        flags=RequestFlag(flags),
        address=ip_address(REQUESTER),
        port=1229,
    )


async def exchange(
    request: FenceRequest,
    dispatcher: Dispatcher,
    *,
    host_auth: HashType = HashType.SHA256,
    client_auth: HashType = HashType.SHA256,
    client_key: bytes = KEY,
) -> tuple[bytes | BaseException, bytes | BaseException]:
    """Run host and client against each other; each side's result or exception."""
    host_sock, client_sock = socket.socketpair()
    client_streams = await asyncio.open_connection(sock=client_sock)
    channel = channel_on(host_sock, timeout=5)

    async def host() -> bytes:
        try:
            return await serve(
                request, channel, Credentials(host_auth, KEY), dispatcher, requester=REQUESTER
            )
        finally:
            channel.close()

    results = await asyncio.gather(
        host(), client_session(*client_streams, client_auth, client_key), return_exceptions=True
    )
    return results[0], results[1]


def channel_on(sock: socket.socket, timeout: float) -> SocketChannel:
    sock.setblocking(False)
    return SocketChannel(sock, timeout)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


@pytest.mark.parametrize("auth", [HashType.SHA1, HashType.SHA256, HashType.SHA512])
def test_status_after_the_handshake(auth: HashType, dispatcher) -> None:
    dispatcher.response = Response.OFF
    sent, received = run(
        exchange(accepted(Operation.STATUS), dispatcher, host_auth=auth, client_auth=auth)
    )
    assert sent == received == b"\x02"
    assert dispatcher.calls == [
        (
            Operation.STATUS,
            Target(domain="vm1", by_uuid=False, requester="198.51.100.11", seqno=777),
        )
    ]


def test_uuid_flag_reaches_the_backend(dispatcher) -> None:
    uuid = "11111111-1111-1111-1111-111111111111"
    run(exchange(accepted(Operation.OFF, uuid, flags=1), dispatcher))
    operation, target = dispatcher.calls[0]
    assert operation is Operation.OFF
    assert isinstance(target, Target)
    assert (target.domain, target.by_uuid) == (uuid, True)


def test_host_list_stream_is_the_c_one(dispatcher, vms: tuple[HostState, ...]) -> None:
    sent, received = run(exchange(accepted(Operation.HOSTLIST, ""), dispatcher))
    assert sent == received
    assert isinstance(received, bytes)
    assert len(received) == 1 + 3 * 130 + 1
    assert received[0] == 0xFD
    assert received[-1] == 0
    assert received[-131:-1] == bytes(130)
    decoder = HostListDecoder()
    assert decoder.feed(received) == list(vms)
    assert decoder.done
    assert dispatcher.calls == [("hostlist", "198.51.100.11")]


def test_failed_host_list_is_a_plain_failure(dispatcher) -> None:
    dispatcher.fail_list = True
    sent, received = run(exchange(accepted(Operation.HOSTLIST, ""), dispatcher))
    assert sent == received == b"\x01"


@pytest.mark.parametrize("code", [7, 8, 9, 200])
def test_unknown_operation_fails_without_calling_the_backend(code: int, dispatcher) -> None:
    sent, received = run(exchange(accepted(code), dispatcher))
    assert sent == received == b"\x01"
    assert dispatcher.calls == []


def test_client_with_wrong_key_gets_nothing_done(dispatcher) -> None:
    host, client = run(exchange(accepted(Operation.OFF), dispatcher, client_key=b"wrong"))
    assert isinstance(client, AuthenticationError)
    assert isinstance(host, RemoteError)
    assert "client rejected our proof" in str(host)
    assert dispatcher.calls == []


@pytest.mark.parametrize("operation", [Operation.OFF, Operation.REBOOT, Operation.STATUS])
def test_the_backend_waits_for_both_proofs(operation: Operation, dispatcher) -> None:
    """The client proves itself last: the backend must not have been asked before that."""

    def watching() -> None:
        assert proven.is_set(), "backend called before the client's proof arrived"

    async def scenario() -> bytes:
        host_sock, client_sock = socket.socketpair()
        channel = channel_on(host_sock, timeout=5)
        reader, writer = await asyncio.open_connection(sock=client_sock)
        client = AuthExchange.for_client(HashType.SHA256, KEY)
        host = asyncio.create_task(
            serve(
                accepted(operation),
                channel,
                Credentials(HashType.SHA256, KEY),
                dispatcher,
                requester=REQUESTER,
            )
        )
        writer.write(client.data_to_send())
        client.receive_data(await reader.readexactly(128))
        await asyncio.sleep(0.05)  # give a wrongly early backend call its chance
        proven.set()
        writer.write(client.data_to_send())
        sent = await host
        channel.close()
        writer.close()
        return sent

    proven = asyncio.Event()
    dispatcher.before_fence = watching
    assert run(scenario()) == b"\x00"
    assert [op for op, _ in dispatcher.calls] == [operation]


def test_different_auth_types_get_nothing_done(dispatcher) -> None:
    host, client = run(
        exchange(
            accepted(Operation.OFF),
            dispatcher,
            host_auth=HashType.SHA256,
            client_auth=HashType.SHA1,
        )
    )
    assert isinstance(client, AuthenticationError)
    assert isinstance(host, RemoteError)
    assert dispatcher.calls == []


def test_auth_none_skips_the_handshake(dispatcher) -> None:
    sent, received = run(
        exchange(
            accepted(Operation.ON),
            dispatcher,
            host_auth=HashType.NONE,
            client_auth=HashType.NONE,
        )
    )
    assert sent == received == b"\x00"


def test_a_client_that_proves_nothing_is_refused(dispatcher) -> None:
    """The client answers our challenge with zeros: AuthenticationError, nothing executed."""

    async def scenario() -> BaseException | bytes:
        host_sock, client_sock = socket.socketpair()
        channel = channel_on(host_sock, timeout=5)
        reader, writer = await asyncio.open_connection(sock=client_sock)
        host = asyncio.create_task(
            serve(
                accepted(Operation.OFF),
                channel,
                Credentials(HashType.SHA256, KEY),
                dispatcher,
                requester=REQUESTER,
            )
        )
        writer.write(bytes(64))
        await reader.readexactly(128)
        writer.write(bytes(64))
        try:
            return await host
        except AuthenticationError as exc:
            return exc
        finally:
            channel.close()
            writer.close()

    outcome = run(scenario())
    assert isinstance(outcome, AuthenticationError)
    assert "invalid response to challenge" in str(outcome)
    assert dispatcher.calls == []


@pytest.mark.parametrize(
    ("timeout", "client_sends", "reason"),
    [
        (0.2, None, "client sent nothing for 0.2 s"),
        (5, b"x" * 10, "closed the connection after 10 of 64 bytes"),
    ],
    ids=["silent", "hangs-up-mid-challenge"],
)
def test_a_client_that_stalls_or_hangs_up_is_a_remote_error(
    timeout: float, client_sends: bytes | None, reason: str, dispatcher
) -> None:
    """``client_sends`` None: the client stays connected and says nothing; else it sends
    those bytes and hangs up."""

    async def scenario() -> BaseException | bytes:
        host_sock, client_sock = socket.socketpair()
        channel = channel_on(host_sock, timeout=timeout)
        if client_sends is not None:
            client_sock.sendall(client_sends)
            client_sock.close()
        try:
            return await serve(
                accepted(Operation.OFF),
                channel,
                Credentials(HashType.SHA256, KEY),
                dispatcher,
                requester=REQUESTER,
            )
        except RemoteError as exc:
            return exc
        finally:
            channel.close()
            client_sock.close()

    outcome = run(scenario())
    assert isinstance(outcome, RemoteError)
    assert reason in str(outcome)
    assert dispatcher.calls == []


# ---------------------------------------------------------------------------------------------
# tcp / vsock: the client sends its signed request on the stream first (c-suite-spec §1.3)


def receive_from(data: bytes, *, close: bool = True, timeout: float = 5) -> FenceRequest:
    """:func:`receive_request` on a stream that carries ``data`` (then EOF if ``close``)."""

    async def scenario() -> FenceRequest:
        host_sock, client_sock = socket.socketpair()
        channel = channel_on(host_sock, timeout=timeout)
        client_sock.sendall(data)
        if close:
            client_sock.close()
        try:
            return await receive_request(channel, KEY, HashType.SHA256)
        finally:
            channel.close()
            client_sock.close()

    return run(scenario())


def tcp_request(hashtype: HashType = HashType.SHA256, key: bytes = KEY) -> FenceRequest:
    return fence_request(Operation.REBOOT, "vm1", key=key, hashtype=hashtype, seqno=31337)


def test_a_signed_request_on_the_stream_is_received() -> None:
    sent = tcp_request()
    assert receive_from(sent.encode() + b"the handshake follows", close=False) == sent


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (tcp_request(key=b"other key").encode(), AuthenticationError, "signature mismatch"),
        (tcp_request(HashType.SHA1).encode(), AuthenticationError, "weaker than required"),
        (tcp_request().encode()[:100], ProtocolError, "closed the connection after 100 of 176"),
        (b"", ProtocolError, "after 0 of 176 bytes"),
    ],
    ids=["wrong-key", "weak-hash", "cut-short", "nothing"],
)
def test_a_request_that_does_not_verify_is_refused(
    data: bytes, error: type[RemoteError], words: str
) -> None:
    with pytest.raises(error, match=words):
        receive_from(data)


def test_a_silent_client_times_out() -> None:
    """The tcp listener gives the request 1 s (C); the channel's timeout is that deadline."""
    with pytest.raises(RemoteError, match=r"client sent nothing for 0\.2 s"):
        receive_from(b"", close=False, timeout=0.2)
