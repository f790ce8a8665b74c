"""The stream server (tcp, vsock) over socketpairs and a UNIX listening socket.

Each connection's host end is handed to :class:`StreamServer` with the peer address a tcp
listener would see (``connection_made``), or accepted from a listening UNIX socket in the
test's directory: no network is involved. The client is the codec's own (the kit's
``client_session``, which drives ``AuthExchange.for_client`` as our agents do); the
dispatcher is the kit's recording stand-in for core's (this file tests what the listener
asks and sends back; real backends are exercised through fence_virtd in the tcp listener's
namespace tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fence_virt import Target
from fence_virt.errors import LocalError
from fence_virt.listening import ReplaySettings, StreamPolicy, StreamServer
from fence_virt.protocol import HashType, HostListDecoder, Operation, Response
from fence_virt.testing import RecordingDispatcher, client_session
from fence_virt.testing.factories import fence_request, other_key, raw_domain_request

KEY = b"stream key\n"
LOGGER = "fence_virt.listener.stream-test"
#: the peer address a tcp listener's accept would return, and the requester it vouches for
PEER = ("198.51.100.7", 40000)
REQUESTER = "198.51.100.7"


def policy(**changes: object) -> StreamPolicy:
    values: dict[str, object] = {
        "key": KEY,
        "hash": HashType.SHA256,
        "auth": HashType.SHA256,
        "request_timeout": 1.0,
        "io_timeout": 5.0,
    }
    values.update(changes)
    return StreamPolicy(**values)  # type: ignore[arg-type]


def peer_ip(address: tuple[str, int]) -> str:
    host, _port = address
    return host


def run(coro: Awaitable[object], timeout: float = 30) -> object:
    async def bounded() -> object:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


class Harness:
    """A started server (its listening socket is a UNIX one nobody connects to unless a test
    says so) and clients on socketpairs."""

    def __init__(self, server: StreamServer, dispatcher: RecordingDispatcher) -> None:
        self.server = server
        self.dispatcher = dispatcher

    def connect(self, address: object = PEER) -> socket.socket:
        """A new connection; returns the client's end."""
        host_end, client_end = socket.socketpair()
        self.server.connection_made(host_end, address)
        return client_end

    async def call(
        self,
        data: bytes,
        *,
        key: bytes = KEY,
        auth: HashType = HashType.SHA256,
        address: object = PEER,
    ) -> bytes:
        """Send ``data`` as the request, run the client's handshake, return the answer."""
        reader, writer = await asyncio.open_connection(sock=self.connect(address))
        writer.write(data)
        return await client_session(reader, writer, auth, key)

    async def refused(self, client_end: socket.socket) -> bytes:
        """Whatever the host sent until it closed the connection."""
        reader, writer = await asyncio.open_connection(sock=client_end)
        try:
            return await reader.read()
        except ConnectionResetError:  # closed with our bytes unread: refused all the same
            return b""
        finally:
            writer.close()


def request(operation: Operation, domain: str = "vm1", **kwargs: object) -> bytes:
    return fence_request(operation, domain, key=KEY, **kwargs).encode()  # type: ignore[arg-type]


def serving(
    body: Callable[[Harness], Awaitable[None]],
    tmp_path: Path,
    *,
    dispatcher: RecordingDispatcher | None = None,
    max_connections: int = 8,
    requester: Callable[[object], str] = peer_ip,  # type: ignore[assignment]
    replay: ReplaySettings | None = None,
    **changes: object,
) -> None:
    """Run ``body`` against a started server; stop it afterwards whatever happens."""
    recorder = RecordingDispatcher() if dispatcher is None else dispatcher

    async def main() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp_path / "server.sock"))
        sock.listen(16)
        server = StreamServer(
            sock,
            policy(**changes),
            requester=requester,
            log=logging.getLogger(LOGGER),
            max_connections=max_connections,
            replay=replay,
        )
        await server.start(recorder)
        try:
            await body(Harness(server, recorder))
        finally:
            await server.stop()

    run(main())


def drop_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and "dropped" in r.message]


# ---------------------------------------------------------------------------------------------
# served


@pytest.mark.parametrize("hashtype", [HashType.SHA256, HashType.SHA512])
@pytest.mark.parametrize("auth", [HashType.SHA1, HashType.SHA256, HashType.SHA512])
def test_a_request_is_served_with_the_requester_the_listener_vouches_for(
    tmp_path: Path, hashtype: HashType, auth: HashType
) -> None:
    async def body(h: Harness) -> None:
        h.dispatcher.response = Response.OFF
        got = await h.call(request(Operation.STATUS, seqno=9, hashtype=hashtype), auth=auth)
        assert got == b"\x02"
        target = Target(domain="vm1", by_uuid=False, requester=REQUESTER, seqno=9)
        assert h.dispatcher.calls == [(Operation.STATUS, target)]

    serving(body, tmp_path, auth=auth)


def test_a_host_list_is_the_c_stream(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        got = await h.call(request(Operation.HOSTLIST, ""))
        decoder = HostListDecoder()
        assert decoder.feed(got) == list(h.dispatcher.vms)
        assert decoder.done
        assert got[-1] == 0
        assert h.dispatcher.calls == [("hostlist", REQUESTER)]

    serving(body, tmp_path)


def test_a_vsock_peer_address_gives_the_cid_in_decimal(tmp_path: Path) -> None:
    """The requester function is the listener's: here a vsock one, on a (cid, port) address."""

    async def body(h: Harness) -> None:
        await h.call(request(Operation.OFF), address=(42, 1025))
        [(_, target)] = h.dispatcher.fenced
        assert target.requester == "42"

    serving(body, tmp_path, requester=lambda address: str(address[0]))  # type: ignore[index]


def test_connections_accepted_from_the_listening_socket_are_served(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "server.sock"))
        writer.write(request(Operation.REBOOT))
        assert await client_session(reader, writer, HashType.SHA256, KEY) == b"\x00"
        [(_, target)] = h.dispatcher.fenced
        assert target.requester == "unix peer"

    serving(body, tmp_path, requester=lambda _address: "unix peer")


# ---------------------------------------------------------------------------------------------
# refused: one drop line each, the connection closed, nothing executed


def tampered() -> bytes:
    data = bytearray(request(Operation.OFF))
    data[4] ^= 0x01  # the domain changed after signing
    return bytes(data)


BAD_REQUESTS = {
    "cut-short": (request(Operation.OFF)[:100], "closed the connection after 100 of 176 bytes"),
    "nothing": (b"", "closed the connection after 0 of 176 bytes"),
    "tampered": (tampered(), "sha256 signature mismatch"),
    "wrong-key": (
        fence_request(Operation.OFF, "vm1", key=other_key(KEY)).encode(),
        "sha256 signature mismatch",
    ),
    "weak-hash": (request(Operation.OFF, hashtype=HashType.SHA1), "weaker than required"),
    "unsigned": (request(Operation.OFF, hashtype=HashType.NONE), "weaker than required"),
    "random": (os.urandom(176), ""),
    # a name no UTF-8 client sends, but from a stranger: never answered
    "latin-1-wrong-key": (
        raw_domain_request(Operation.OFF, b"caf\xe9", key=other_key(KEY)),
        "sha256 signature mismatch",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_a_request_that_does_not_verify_costs_one_line_and_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    data, reason = BAD_REQUESTS[case]

    async def body(h: Harness) -> None:
        client = h.connect()
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        assert await h.refused(client) == b"", "the host answered something"
        assert h.dispatcher.calls == []
        assert await h.call(request(Operation.ON)) == b"\x00", "the server stopped serving"

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        serving(body, tmp_path)
    [line] = drop_lines(caplog)
    assert line.startswith(f"dropped connection from {REQUESTER}: ")
    assert reason in line


def test_a_silent_client_is_dropped_at_its_deadline_and_delays_nobody(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(h: Harness) -> None:
        silent = h.connect()
        started = time.monotonic()
        assert await h.call(request(Operation.STATUS)) == b"\x00"
        assert time.monotonic() - started < 0.5, "a silent client delayed a valid one"
        assert await h.refused(silent) == b""
        assert 0.9 < time.monotonic() - started < 3.0, "not dropped at its 1-s deadline"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path, request_timeout=1.0)
    silence = "client sent nothing for 1 s"
    assert drop_lines(caplog) == [f"dropped connection from {REQUESTER}: {silence}"]


def test_a_client_that_trickles_its_request_is_cut_at_the_deadline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The deadline covers the whole request, not each byte of it."""

    async def body(h: Harness) -> None:
        client = h.connect()
        started = time.monotonic()
        data = request(Operation.OFF)
        for index in range(20):
            try:
                client.sendall(data[index : index + 1])
            except BrokenPipeError:  # the host hung up: what the test wants
                break
            await asyncio.sleep(0.1)
        assert await h.refused(client) == b""
        assert time.monotonic() - started < 1.5
        assert h.dispatcher.calls == []

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path, request_timeout=0.5)
    [line] = drop_lines(caplog)
    assert re.search(r"client sent only \d of 176 bytes in 0\.5 s", line), line


async def junk_handshake(h: Harness, *, answer: bytes | None) -> bytes:
    """A valid request, then 64 random bytes as the challenge, then ``answer`` (None: hang up
    without answering the host's challenge)."""
    reader, writer = await asyncio.open_connection(sock=h.connect())
    writer.write(request(Operation.OFF) + os.urandom(64))
    await reader.readexactly(128)  # the host answered the junk and sent its own challenge
    if answer is None:
        writer.close()
        return b""
    writer.write(answer)
    try:
        return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (bytes(64), "invalid response to challenge"),
        (os.urandom(10), "client rejected our proof"),
        (None, "client rejected our proof"),
    ],
    ids=["zeros", "ten-bytes-then-hang-up", "hang-up"],
)
def test_junk_during_the_challenge_costs_one_line_and_nothing_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, answer: bytes | None, reason: str
) -> None:
    async def body(h: Harness) -> None:
        assert await junk_handshake(h, answer=answer) == b""
        assert h.dispatcher.calls == []
        # nothing ran, so the same request (freshly signed) may run now
        assert await h.call(request(Operation.OFF)) == b"\x00"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path, io_timeout=1.0)
    [line] = drop_lines(caplog)
    assert reason in line


def test_a_client_with_another_auth_type_gets_nothing_done(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the client's own failure
            await h.call(request(Operation.OFF), auth=HashType.SHA1)
        assert h.dispatcher.calls == []

    serving(body, tmp_path)


def test_an_address_the_requester_function_rejects_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(h: Harness) -> None:
        client = h.connect(address="nonsense")
        assert await h.refused(client) == b""
        assert await h.call(request(Operation.OFF)) == b"\x00"
        assert len(h.dispatcher.calls) == 1

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path)
    [line] = drop_lines(caplog)
    assert line.startswith("dropped connection from 'nonsense': unusable peer address")


def test_a_flood_of_garbage_connections_then_a_valid_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """300 garbage connections at once: rate-limited lines, then a valid request runs."""

    async def body(h: Harness) -> None:
        clients = [h.connect() for _ in range(300)]
        for client in clients:
            client.sendall(os.urandom(176))
            client.shutdown(socket.SHUT_WR)
        await asyncio.gather(*(h.refused(client) for client in clients))
        assert h.dispatcher.calls == []
        assert await h.call(request(Operation.OFF)) == b"\x00"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path)
    assert 90 <= len(drop_lines(caplog)) <= 110, "not rate-limited (burst 100)"


# ---------------------------------------------------------------------------------------------
# authentic, but nothing to carry out: FAIL at once (issue 21, B6)

UNSERVABLE = {
    "latin-1": (
        b"caf\xe9",
        "domain caf\\xe9 from 198.51.100.7: cannot be carried out "
        "(domain is not valid UTF-8: b'caf\\xe9'): answered 1",
    ),
    "no-nul": (
        b"v" * 64,
        f"domain {'v' * 64} from 198.51.100.7: cannot be carried out "
        "(domain field has no NUL terminator): answered 1",
    ),
}


@pytest.mark.parametrize("case", UNSERVABLE, ids=list(UNSERVABLE))
def test_an_authentic_request_with_an_undecodable_domain_is_answered_fail_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """C answers such a request (the lookup fails); silence would cost the client its
    whole timeout. The handshake runs first, then FAIL, without asking the dispatcher."""
    domain, line = UNSERVABLE[case]

    async def body(h: Harness) -> None:
        started = time.monotonic()
        data = raw_domain_request(Operation.OFF, domain, key=KEY, seqno=31)
        assert await h.call(data) == bytes([Response.FAIL])
        assert time.monotonic() - started < 1.0
        assert h.dispatcher.calls == []
        retransmit = h.connect()  # freshly signed, same request: C's 10-s history
        retransmit.sendall(raw_domain_request(Operation.OFF, domain, key=KEY, seqno=31))
        assert await h.refused(retransmit) == b""
        assert await h.call(request(Operation.OFF, seqno=31)) == b"\x00", "another request"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path)
    [refusal] = [m for m in caplog.messages if "cannot be carried out" in m]
    assert refusal == f"request 1 seqno 31 {line}"
    [retransmit] = drop_lines(caplog)
    assert "retransmit of a request in progress or just answered" in retransmit


def test_list_and_monitor_ignore_an_undecodable_domain_as_c_does(tmp_path: Path) -> None:
    """Their domain field plays no part (C never reads it), so they are served as usual."""

    async def body(h: Harness) -> None:
        data = raw_domain_request(Operation.HOSTLIST, b"caf\xe9", key=KEY, seqno=41)
        assert (await h.call(data))[0] == 0xFD
        data = raw_domain_request(Operation.DEVSTATUS, b"x" * 64, key=KEY, seqno=42)
        assert await h.call(data) == b"\x00"
        assert [(op, t.domain) for op, t in h.dispatcher.fenced] == [(Operation.DEVSTATUS, "")]
        assert ("hostlist", PEER[0]) in h.dispatcher.calls

    serving(body, tmp_path)


def test_an_unknown_operation_code_is_answered_fail_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(h: Harness) -> None:
        assert await h.call(request(99)) == bytes([Response.FAIL])  # type: ignore[arg-type]
        assert h.dispatcher.calls == []

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path)
    assert "request 99 from 198.51.100.7: no such operation" in caplog.messages


# ---------------------------------------------------------------------------------------------
# duplicates and replays


def test_the_same_signed_bytes_run_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(h: Harness) -> None:
        data = request(Operation.REBOOT)
        assert await h.call(data) == b"\x00"
        client = h.connect()
        client.sendall(data)
        assert await h.refused(client) == b""
        assert len(h.dispatcher.calls) == 1

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path)
    [line] = drop_lines(caplog)
    assert "replayed copy of a request received 0 s ago" in line


def test_replays_are_logged_once_per_requester(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(h: Harness) -> None:
        data = request(Operation.STATUS)
        assert await h.call(data) == b"\x00"
        for peer in [("198.51.100.7", port) for port in range(20)] + [("198.51.100.8", 1)]:
            client = h.connect(peer)
            client.sendall(data)
            assert await h.refused(client) == b""
        assert len(h.dispatcher.calls) == 1

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path)
    replays = [line for line in drop_lines(caplog) if "replayed copy" in line]
    assert [line.split(":")[0] for line in replays] == [
        "dropped connection from 198.51.100.7",
        "dropped connection from 198.51.100.8",
    ]
    assert "refused 19 more replayed requests from 198.51.100.7 in the last 60 s" in (
        caplog.messages
    ), "the stop writes the count of what was not logged"


def test_the_replay_memory_survives_a_restart_in_its_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state" / "replay-tcp.state"
    data = request(Operation.STATUS)

    async def first(h: Harness) -> None:
        assert await h.call(data) == b"\x00"

    async def second(h: Harness) -> None:
        replay = h.connect()
        replay.sendall(data)
        assert await h.refused(replay) == b""
        assert h.dispatcher.calls == []
        assert await h.call(request(Operation.STATUS)) == b"\x00", "a fresh request runs"

    replay = ReplaySettings(window=600, state_file=state)
    for run, place in ((first, "before"), (second, "after")):
        (tmp_path / place).mkdir()
        serving(run, tmp_path / place, replay=replay)
    assert state.stat().st_mode & 0o777 == 0o600


def test_a_captured_request_cannot_be_replayed_even_if_its_first_use_failed(
    tmp_path: Path,
) -> None:
    """The first connection stops after the host's challenge; a replay of the same bytes gets
    no second challenge answer (the oracle of c-suite-spec §3.3)."""

    async def body(h: Harness) -> None:
        data = request(Operation.OFF)
        first = h.connect()
        first.sendall(data + os.urandom(64))
        reader, writer = await asyncio.open_connection(sock=first)
        await reader.readexactly(128)
        writer.close()
        replay = h.connect()
        replay.sendall(data + os.urandom(64))
        assert await h.refused(replay) == b""
        assert h.dispatcher.calls == []

    serving(body, tmp_path, io_timeout=1.0)


def test_a_copy_with_the_same_seqno_runs_once_while_in_flight_and_for_10_s_after(
    tmp_path: Path,
) -> None:
    """C's history: (operation, seqno, domain) -- a fresh signature does not make a new request."""
    release = asyncio.Event()

    class Slow(RecordingDispatcher):
        async def fence(self, operation: Operation, target: Target) -> Response:
            await release.wait()
            return await super().fence(operation, target)

    async def body(h: Harness) -> None:
        first = asyncio.create_task(h.call(request(Operation.REBOOT, seqno=5)))
        await asyncio.sleep(0.2)
        copy = h.connect()
        copy.sendall(request(Operation.REBOOT, seqno=5))
        assert await h.refused(copy) == b""
        release.set()
        assert await first == b"\x00"
        late = h.connect()
        late.sendall(request(Operation.REBOOT, seqno=5))
        assert await h.refused(late) == b""
        assert await h.call(request(Operation.REBOOT, seqno=6)) == b"\x00"
        assert [t.seqno for _, t in h.dispatcher.fenced] == [5, 6]

    serving(body, tmp_path, dispatcher=Slow())


def test_two_requesters_may_use_the_same_seqno(tmp_path: Path) -> None:
    """C's history key leaves out the requester; two guests whose clocks gave them the same
    seqno would shadow each other there. Here each is served."""

    async def body(h: Harness) -> None:
        for peer in (("198.51.100.7", 1), ("198.51.100.8", 1)):
            assert await h.call(request(Operation.HOSTLIST, "", seqno=77), address=peer) != b""
        assert h.dispatcher.calls == [("hostlist", "198.51.100.7"), ("hostlist", "198.51.100.8")]

    serving(body, tmp_path)


def test_a_request_whose_reply_could_not_be_delivered_is_not_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = asyncio.Event()

    class HangsUp(RecordingDispatcher):
        async def fence(self, operation: Operation, target: Target) -> Response:
            await gone.wait()  # the client has hung up by now
            return await super().fence(operation, target)

    async def body(h: Harness) -> None:
        reader, writer = await asyncio.open_connection(sock=h.connect())
        writer.write(request(Operation.OFF, seqno=8))
        task = asyncio.create_task(client_session(reader, writer, HashType.SHA256, KEY))
        await asyncio.sleep(0.3)
        task.cancel()
        writer.close()
        gone.set()
        await asyncio.sleep(0.2)
        again = h.connect()
        again.sendall(request(Operation.OFF, seqno=8))
        assert await h.refused(again) == b""
        assert len(h.dispatcher.fenced) == 1

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path, dispatcher=HangsUp())
    lost, retransmit = drop_lines(caplog)
    assert "request 1 seqno 8 domain vm1 from 198.51.100.7: carried out (answer 0)" in lost
    assert "but the answer was lost: writing to client:" in lost
    assert "retransmit of a request in progress or just answered" in retransmit


# ---------------------------------------------------------------------------------------------
# the bound, start and stop


def test_no_more_than_max_connections_are_served_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()
    running = 0
    most = 0

    class Blocking(RecordingDispatcher):
        async def fence(self, operation: Operation, target: Target) -> Response:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1
            return await super().fence(operation, target)

    async def body(h: Harness) -> None:
        calls = [
            asyncio.create_task(h.call(request(Operation.OFF, f"vm{n}", seqno=n))) for n in range(5)
        ]
        await asyncio.sleep(0.5)
        assert running == 2, "the third connection was served beyond max_connections"
        release.set()
        assert await asyncio.gather(*calls) == [b"\x00"] * 5
        assert most == 2
        assert len(h.dispatcher.fenced) == 5

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path, dispatcher=Blocking(), max_connections=2)
    assert "2 connections open (max_connections): further clients wait" in caplog.messages


def test_at_the_bound_a_valid_client_waits_for_a_silent_one_s_deadline(tmp_path: Path) -> None:
    """With every slot held by a silent client, a valid request is served when the first
    slot frees, at the silent client's 1-s deadline: not refused, not delayed further."""

    async def body(h: Harness) -> None:
        silent = h.connect()
        await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await h.call(request(Operation.STATUS)) == b"\x00"
        assert 0.7 < time.monotonic() - started < 3.0
        silent.close()

    serving(body, tmp_path, max_connections=1)


def test_at_the_bound_the_server_stops_accepting(tmp_path: Path) -> None:
    """Over the listening socket: with its one slot held by a silent client, the server
    accepts one more connection (which waits for the slot) and leaves the rest in the
    kernel's backlog; all are served once the slot frees."""

    async def body(h: Harness) -> None:
        path = str(tmp_path / "server.sock")
        silent = await asyncio.open_unix_connection(path)
        waiting = [await asyncio.open_unix_connection(path) for _ in range(3)]
        await asyncio.sleep(0.3)
        assert h.server.open_connections == 2, "accepted beyond the bound"
        for reader, writer in waiting:
            writer.write(request(Operation.STATUS, seqno=len(h.dispatcher.calls) + 100))
            assert await client_session(reader, writer, HashType.SHA256, KEY) == b"\x00"
        silent[1].close()

    serving(body, tmp_path, max_connections=1, requester=lambda _address: "unix peer")


def test_accept_failing_for_lack_of_descriptors_is_logged_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE: the process's descriptor limit is lowered to the lowest free descriptor for
    a moment, so the server's accept(2) cannot get one; retries every 0.1 s say nothing more,
    and the waiting client is served once descriptors are back."""
    import resource

    async def body(h: Harness) -> None:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        probe = os.dup(0)
        os.close(probe)
        resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))
        try:
            client.connect(str(tmp_path / "server.sock"))
            await asyncio.sleep(0.5)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        reader, writer = await asyncio.open_connection(sock=client)
        writer.write(request(Operation.STATUS))
        assert await client_session(reader, writer, HashType.SHA256, KEY) == b"\x00"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        serving(body, tmp_path, requester=lambda _address: "unix peer")
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == [
        "accepting connections fails: Too many open files",
        "accepting connections again",
    ]


def test_stop_closes_the_socket_and_ends_open_connections(tmp_path: Path) -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp_path / "stop.sock"))
        sock.listen(4)
        server = StreamServer(
            sock, policy(request_timeout=30.0), requester=peer_ip, log=logging.getLogger(LOGGER)
        )
        await server.start(RecordingDispatcher())
        with pytest.raises(LocalError, match="started twice"):
            await server.start(RecordingDispatcher())
        host_end, client_end = socket.socketpair()
        server.connection_made(host_end, PEER)
        await asyncio.sleep(0.1)
        assert server.open_connections == 1
        await asyncio.wait_for(server.stop(), 5)
        assert server.open_connections == 0
        assert sock.fileno() == -1
        assert client_end.recv(1) == b"", "the open connection was not closed"
        other_host, other_client = socket.socketpair()
        with pytest.raises(LocalError, match="not serving"):
            server.connection_made(other_host, PEER)
        assert other_host.fileno() == -1
        await server.stop()
        client_end.close()
        other_client.close()

    run(main())


def test_max_connections_below_one_is_refused_and_the_socket_closed() -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(LocalError, match="at least 1"):
            StreamServer(
                sock, policy(), requester=peer_ip, log=logging.getLogger(LOGGER), max_connections=0
            )
        assert sock.fileno() == -1

    run(main())
