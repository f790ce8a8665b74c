"""fence_virt's TCP and vsock transports in-process, against core's host-side stream session.

The host here is the real listener toolkit (:func:`fence_virt.listening.receive_request` and
:func:`~fence_virt.listening.serve` over a :class:`~fence_virt.listening.SocketChannel`) in
front of the plugin kit's :class:`~fence_virt.testing.RecordingDispatcher` (a test double
for the backend: it answers what a test says and records the calls). The agent runs whole,
through :func:`fence_virt.agents.runner.run`.

TCP uses real sockets on 127.0.0.1 (an ephemeral port). vsock cannot: these machines' kernels
have no vsock loopback transport, so any ``AF_VSOCK`` connect, even to CID 1 or our own,
leaves the machine for the hypervisor. The vsock tests therefore never connect over
``AF_VSOCK``: they replace :func:`fence_virt.agents.stream.connect_vsock` with a function
that records the ``(cid, port)`` it was asked for and returns one end of a
``socketpair()``, whose other end the host session serves with the requester a vsock
listener would vouch for (the peer CID in decimal). Only :func:`~fence_virt.agents.stream.
vsock_socket` makes a real ``AF_VSOCK`` socket, and nothing connects it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.agents import runner, stream, virt
from fence_virt.listening import Credentials, SocketChannel, receive_request, serve
from fence_virt.protocol import FENCE_REQ_SIZE, AuthExchange, FenceRequest, HashType, Operation
from fence_virt.protocol.constants import ADDRESS_SIZE, CHALLENGE_SIZE
from fence_virt.testing import RecordingDispatcher
from fence_virt_testinfra import c_suite

UUID1 = "11111111-1111-1111-1111-111111111111"


class Host:
    """One fence_virtd stream session on a thread: reads the request, answers, records."""

    def __init__(
        self, key: bytes, *, auth: HashType = HashType.SHA256, proof_key: bytes | None = None
    ) -> None:
        self.key = key
        self.auth = auth
        #: the key the host answers and checks challenges with (another one: a wrong key)
        self.proof_key = key if proof_key is None else proof_key
        self.dispatcher = RecordingDispatcher()
        self.requests: list[FenceRequest] = []
        self.requesters: list[str] = []
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def serve(self, sock: socket.socket, requester: str) -> None:
        """Serve one session on ``sock`` (connected) in the background."""
        self._thread = threading.Thread(target=self._run, args=(sock, requester), daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive(), "the host session did not end"

    def _run(self, sock: socket.socket, requester: str) -> None:
        try:
            asyncio.run(self._session(sock, requester))
        except Exception as exc:  # noqa: BLE001 - a test may expect the session to fail
            self.error = exc
        finally:
            sock.close()

    async def _session(self, sock: socket.socket, requester: str) -> None:
        sock.setblocking(False)
        channel = SocketChannel(sock, timeout=5)
        request = await receive_request(channel, self.key, HashType.SHA256)
        self.requests.append(request)
        self.requesters.append(requester)
        credentials = Credentials(self.auth, self.proof_key)
        await serve(request, channel, credentials, self.dispatcher, requester=requester)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return c_suite.write_key(tmp_path / "fence_xvm.key")


@pytest.fixture
def host(key_path: Path) -> Iterator[Host]:
    serving = Host(key_path.read_bytes())
    yield serving
    serving.join()


@pytest.fixture
def tcp_port(host: Host) -> Iterator[int]:
    """A listener on 127.0.0.1 (ephemeral port) whose first connection ``host`` serves."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def accept() -> None:
        try:
            conn, peer = listener.accept()
        except OSError:
            return
        host.serve(conn, peer[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(10)
    listener.close()


@pytest.fixture
def vsock_calls(monkeypatch: pytest.MonkeyPatch, host: Host) -> list[tuple[str | int, int]]:
    """Replace the vsock connect (see the module docstring): a socketpair the host serves
    as the peer CID; returns the ``(cid, port)`` of every connect asked for."""
    calls: list[tuple[str | int, int]] = []

    def connect(cid: str | int, port: int) -> socket.socket:
        calls.append((cid, port))
        ours, theirs = socket.socketpair()
        host.serve(theirs, str(cid))
        return ours

    def no_tcp(address: str | int, port: int) -> socket.socket:
        raise AssertionError(f"TCP connect to {address}:{port} in a vsock test")

    monkeypatch.setattr(stream, "connect_vsock", connect)
    monkeypatch.setattr(stream, "connect_tcp", no_tcp)
    return calls


def run_agent(*argv: str) -> int:
    return runner.run(virt.AGENT, ["fence_virt", *argv])


def test_tcp_status_carries_a_request_without_connect_back_address(
    host: Host, tcp_port: int, key_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status = run_agent("-T", "127.0.0.1", "-p", str(tcp_port), "-k", str(key_path), "-o",
                       "status", "-H", "vm1")  # fmt: skip
    assert (status, capsysbinary.readouterr()) == (0, (b"Status: ON\n", b""))
    host.join()
    (request,) = host.requests
    assert (request.operation, request.domain, request.hash_type) == (
        Operation.STATUS,
        "vm1",
        HashType.SHA256,
    )
    # c-suite-spec §1.3: addrlen, address, port and family all zero; fence_virt has no -u
    assert (request.addrlen, request.address, request.port, request.family) == (
        0,
        bytes(ADDRESS_SIZE),
        0,
        0,
    )
    assert request.flags == 0
    assert host.requesters == ["127.0.0.1"]


def test_tcp_list_by_uuid_domain_and_sha512(
    host: Host, tcp_port: int, key_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status = run_agent("-T", "127.0.0.1", "-p", str(tcp_port), "-k", str(key_path), "-o",
                       "list", "-c", "sha512")  # fmt: skip
    assert status == 0
    assert capsysbinary.readouterr().out == (
        b"vm1                              11111111-1111-1111-1111-111111111111 on\n"
        b"vm2                              22222222-2222-2222-2222-222222222222 off\n"
    )
    host.join()
    assert host.requests[0].hash_type == HashType.SHA512
    assert host.dispatcher.calls == [("hostlist", "127.0.0.1")]


def test_tcp_result_that_never_comes_is_minus_one(
    host: Host, tcp_port: int, key_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """``-t`` bounds the wait for the result byte too: C's -1, exit 255 (§2.5, §4.8)."""
    host.dispatcher.before_fence = lambda: time.sleep(2.5)
    start = time.monotonic()
    status = run_agent("-T", "127.0.0.1", "-p", str(tcp_port), "-k", str(key_path), "-t", "1",
                       "-o", "off", "-H", UUID1)  # fmt: skip
    assert time.monotonic() - start < 2.5
    assert (status, capsysbinary.readouterr().out) == (255, b"Unknown response (-1)\n")


def test_vsock_status_connects_to_cid_and_port(
    host: Host,
    vsock_calls: list[tuple[str | int, int]],
    key_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    status = run_agent("-S3", "-p", "1300", "-k", str(key_path), "-o", "status", "-H", "vm1")
    assert (status, capsysbinary.readouterr()) == (0, (b"Status: ON\n", b""))
    assert vsock_calls == [(3, 1300)]
    host.join()
    (request,) = host.requests
    assert (request.operation, request.domain, request.addrlen, request.family) == (
        Operation.STATUS,
        "vm1",
        0,
        0,
    )
    assert host.requesters == ["3"]


def test_vsock_defaults_to_the_host_and_wins_over_tcp(
    host: Host,
    vsock_calls: list[tuple[str | int, int]],
    key_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    status = run_agent("-T", "127.0.0.1", "-S", "-k", str(key_path), "-o", "off", "-H", "vm2")
    assert (status, capsysbinary.readouterr()) == (0, (b"", b""))
    assert vsock_calls == [(2, 1229)]
    host.join()
    assert [(op, target.domain) for op, target in host.dispatcher.fenced] == [
        (Operation.OFF, "vm2")
    ]


def test_vsock_from_stdin_with_debug_traces(
    host: Host,
    vsock_calls: list[tuple[str | int, int]],
    key_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    data = f"action=reboot\nport=vm1\nvsock=4\nkey_file={key_path}\ndebug=3\n".encode()
    monkeypatch.setattr(runner, "_read_stdin", lambda: data)
    assert runner.run(virt.AGENT, ["fence_virt"]) == 0
    out = capsysbinary.readouterr().out
    assert vsock_calls == [(4, 1229)]
    assert out.endswith(
        f"-- end args --\nReading in key file {key_path} (4096 max size)\n"
        "Actual key length = 4096 bytes\nIssuing challenge\nResponding to challenge\n"
        "vsock Exchange + Authentication done... \n"
        "Waiting for return value from fence_virtd host\n".encode()
    )


def test_vsock_host_with_the_wrong_key_is_not_believed(
    host: Host,
    vsock_calls: list[tuple[str | int, int]],
    key_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """A host that has the request but not the key cannot make us report a fenced VM."""
    host.proof_key = bytes(4096)
    status = run_agent("-S3", "-k", str(key_path), "-o", "off", "-H", "vm1")
    assert (status, capsysbinary.readouterr().out) == (
        1,
        b"Invalid response to challenge\nOperation failed\n",
    )
    host.join()
    assert host.dispatcher.calls == []


@pytest.mark.parametrize(
    ("error", "out"),
    [
        (
            ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
            b"Unable to connect to fence_virtd host 3:1229 Connection reset by peer\n",
        ),
        (
            TimeoutError("timed out"),
            b"Unable to connect to fence_virtd host 3:1229 Connection timed out\n",
        ),
        (
            stream.SocketUnavailable(
                errno.EAFNOSUPPORT, "Address family not supported by protocol"
            ),
            # C prints this one without a newline
            b"Unable to create vsock: Address family not supported by protocol",
        ),
    ],
    ids=["reset", "timeout", "no vsock"],
)
def test_vsock_connect_failures(
    error: OSError,
    out: bytes,
    monkeypatch: pytest.MonkeyPatch,
    key_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    def connect(cid: str | int, port: int) -> socket.socket:
        raise error

    monkeypatch.setattr(stream, "connect_vsock", connect)
    assert run_agent("-S3", "-k", str(key_path), "-o", "status", "-H", "vm1") == 1
    assert capsysbinary.readouterr() == (out + b"Operation failed\n", b"")


def test_a_real_vsock_socket_is_made_but_never_connected() -> None:
    """The one real AF_VSOCK socket of these tests: created, checked, closed."""
    try:
        sock = stream.vsock_socket()
    except OSError as exc:
        pytest.skip(f"no AF_VSOCK here: {exc.strerror}")
    with sock:
        assert (sock.family, sock.type) == (socket.AF_VSOCK, socket.SOCK_STREAM)


def test_tcp_connect_refuses_a_name_without_looking_it_up() -> None:
    with pytest.raises(OSError, match="not an IP address"):
        stream.connect_tcp("localhost", 1229)


@pytest.mark.parametrize(
    ("debug", "trace"),
    [([], b""), (["-dd"], b"Error reading challenge hash: Broken pipe\n")],
    ids=["quiet", "-dd"],
)
def test_host_that_hangs_up_instead_of_challenging(
    debug: list[str],
    trace: bytes,
    monkeypatch: pytest.MonkeyPatch,
    key_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """Test double: a host that proves itself, then closes instead of sending its challenge
    (no real host does that on purpose). C prints the read error only from -d 2 on."""
    key = key_path.read_bytes()

    def half_host(sock: socket.socket) -> None:
        with sock:
            sock.settimeout(5)
            received = b""
            while len(received) < FENCE_REQ_SIZE + CHALLENGE_SIZE:
                received += sock.recv(4096)
            host = AuthExchange.for_host(HashType.SHA256, key)
            host.receive_data(received[FENCE_REQ_SIZE:])
            sock.sendall(host.data_to_send()[:CHALLENGE_SIZE])

    threads: list[threading.Thread] = []

    def connect(cid: str | int, port: int) -> socket.socket:
        ours, theirs = socket.socketpair()
        threads.append(threading.Thread(target=half_host, args=(theirs,), daemon=True))
        threads[-1].start()
        return ours

    monkeypatch.setattr(stream, "connect_vsock", connect)
    status = run_agent(*debug, "-S3", "-k", str(key_path), "-o", "off", "-H", "vm1")
    out = capsysbinary.readouterr().out
    assert status == 1
    assert out.endswith(trace + b"Invalid response to challenge\nOperation failed\n")
    assert b"Responding to challenge" not in out  # only from -d 3 on
    threads[0].join(10)


class V2StreamHost(Host):
    """The host side of protocol v2 (:mod:`fence_virt.listening.v2`) on the same thread."""

    async def _session(self, sock: socket.socket, requester: str) -> None:
        from fence_virt.listening.v2 import check_request, serve_v2
        from fence_virt.protocol.v2 import ProtocolMode

        sock.setblocking(False)
        channel = SocketChannel(sock, timeout=5)
        data = await channel.read_exactly(FENCE_REQ_SIZE)
        request = check_request(data, self.key, HashType.SHA256, mode=ProtocolMode.V2, window=30)
        self.requests.append(request)
        self.requesters.append(requester)
        await serve_v2(request, channel, self.proof_key, self.dispatcher, requester=requester)


def _v2_vsock(monkeypatch: pytest.MonkeyPatch, serving: V2StreamHost) -> None:
    def connect(cid: str | int, port: int) -> socket.socket:
        ours, theirs = socket.socketpair()
        serving.serve(theirs, str(cid))
        return ours

    monkeypatch.setattr(stream, "connect_vsock", connect)


@pytest.mark.parametrize("operation", ["status", "list"])
def test_vsock_in_protocol_v2(
    monkeypatch: pytest.MonkeyPatch,
    key_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    operation: str,
) -> None:
    serving = V2StreamHost(key_path.read_bytes())
    _v2_vsock(monkeypatch, serving)
    done = run_agent("-S3", "-k", str(key_path), "-c", "v2", "-o", operation, "-H", "vm1")
    serving.join()
    assert serving.error is None
    out = capsysbinary.readouterr().out
    assert done == 0
    if operation == "status":
        assert out == b"Status: ON\n"
    else:
        assert out.split()[::3] == [b"vm1", b"vm2"]
    assert serving.requesters == ["3"]


def test_vsock_v2_host_with_the_wrong_key_is_not_believed(
    monkeypatch: pytest.MonkeyPatch, key_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    serving = V2StreamHost(key_path.read_bytes(), proof_key=b"another key")
    _v2_vsock(monkeypatch, serving)
    done = run_agent("-S3", "-k", str(key_path), "-c", "v2", "-o", "off", "-H", "vm1")
    serving.join()
    assert done == 1
    assert b"Invalid response to challenge" in capsysbinary.readouterr().out
    assert serving.dispatcher.calls == []
