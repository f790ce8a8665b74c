"""Fuzzing: hostile bytes into every listener's decoding and session code, and into the
agents' reply parsers; coverage-guided with atheris (libFuzzer).

Run from the repository root::

    .venv/bin/python bench/fuzz.py                      # 1,000,000 inputs per target
    .venv/bin/python bench/fuzz.py --runs 20000 stream  # one target, a short run

Each target runs in a child process of its own (libFuzzer owns the process and ends it), on
the real code a listener runs, with a :class:`fence_virt.testing.RecordingDispatcher` in place
of the backend (it records every call and touches nothing):

* ``multicast`` -- one datagram through :func:`check_datagram` of the multicast listener
  (length, hash, signature, connect-back address), the replay guard and the duplicate filter,
  then :func:`fence_virt.listening.serve` (challenge/response, answer) over an in-memory
  stream fed by the rest of the input: the listener's path without its sockets;
* ``stream`` (tcp, vsock) -- :meth:`fence_virt.listening.StreamSessions.handle`, the whole
  per-connection session, on an in-memory channel;
* ``serial`` (serial, vmchannel) -- :class:`fence_virt.listening.SerialRequestReader` fed the
  input in chunks, each request answered by :func:`fence_virt.listening.answer_serial` with
  the duplicate filter, as :class:`fence_virt.listening.GuestSocketServer` does;
* ``agent-stream`` -- :func:`fence_virt.agents.session.exchange` (fence_xvm, fence_virt -T/-S)
  reading the host's side from the input through an in-memory socket;
* ``agent-serial`` -- the serial agent's reply parsers, :class:`SerialResponseScanner` then
  :class:`HostListDecoder` (serial), driven as :func:`fence_virt.agents.line.exchange` does.

For the fence_req targets the first input byte picks a class: 0 raw bytes; 1 the next 176
bytes become a request signed with the listener's key (the harness writes the signature, so
the decoding behind it is reached), the rest is the client's side of the handshake as given;
2 the same, and the harness also answers the host's challenge correctly. Classes 0 and 1 are
*invalid input* (no client holding the key sent them): a backend call from one is a failure.
Serial has no authentication (the transport vouches for the guest); there, every backend call
must match a well-formed 74-byte request found byte for byte in the input.

A crash is any exception leaving the code under test (beyond the errors its API documents),
or a line it logs as "unexpected error". Each child prints one JSON line of figures; the
parent prints a table and exits 1 on a crash or a forbidden backend call.
"""

# the code under test is imported inside atheris.instrument_imports(), hence in functions
# ruff: noqa: PLC0415
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

TARGETS = ("multicast", "stream", "serial", "agent-stream", "agent-serial")
KEY = b"fuzzing-key-0123456789\n"
#: the requester the stream and multicast targets vouch for
REQUESTER = "198.51.100.7"


class Crash(Exception):
    """The code under test misbehaved (see the module docstring)."""


class Figures:
    """Counters of one target's run."""

    def __init__(self, target: str, runs: int) -> None:
        self.target = target
        self.runs = runs
        self.inputs = 0
        self.invalid = 0
        self.invalid_backend_calls = 0
        self.valid = 0
        self.backend_calls = 0
        self.crashes = 0
        self.started = time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "target": self.target,
            "inputs": self.inputs,
            "seconds": round(elapsed, 1),
            "inputs_per_s": round(self.inputs / elapsed) if elapsed else 0,
            "invalid_inputs": self.invalid,
            "backend_calls_from_invalid": self.invalid_backend_calls,
            "authentic_inputs": self.valid,
            "backend_calls_from_authentic": self.backend_calls,
            "crashes": self.crashes,
        }


class _UnexpectedErrors(logging.Handler):
    """Counts lines logged with a traceback: the catch-all of a session caught a bug."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "unexpected" in record.getMessage():
            self.records.append(record)


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never really waits (in-memory I/O) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise Crash("the coroutine waited on something (no real I/O exists here)")


class MemoryChannel:
    """The client's side of a stream, from the fuzz input; records what the host writes.

    With ``prove``, a 64-byte read after the host wrote its challenge gets the right answer
    (the harness plays a client that holds the key).
    """

    def __init__(self, data: bytes, prove: bool) -> None:
        self._data = data
        self._prove = prove
        self.written = bytearray()
        self.timeout = 1.0

    async def read_exactly(self, size: int) -> bytes:
        from fence_virt.errors import RemoteError
        from fence_virt.protocol import HashType, challenge_response

        if self._prove and size == 64 and len(self.written) >= 128:
            self._prove = False
            return challenge_response(HashType.SHA256, KEY, bytes(self.written[64:128]))
        if len(self._data) < size:
            raise RemoteError("connection closed")
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk

    async def write(self, data: bytes) -> None:
        self.written += data


def split_request(data: bytes) -> tuple[int, bytes, bytes]:
    """(class, request bytes, client stream bytes) of one fence_req input."""
    from fence_virt.protocol.auth import keyed_digest
    from fence_virt.protocol.constants import HASH_OFFSET
    from fence_virt.protocol.enums import HashType

    if not data:
        return 0, b"", b""
    kind = data[0] % 3
    if kind == 0:
        return 0, data[1:177], data[177:]
    body = bytearray(data[1:177].ljust(176, b"\0"))
    body[1] = HashType.SHA256
    body[HASH_OFFSET:] = bytes(64)
    body[HASH_OFFSET:] = keyed_digest(HashType.SHA256, KEY, bytes(body))
    return kind, bytes(body), data[177:]


def make_multicast() -> Callable[[bytes], int]:
    from fence_virt.errors import RemoteError
    from fence_virt.listening import Credentials, ReplayGuard, RequestHistory, serve
    from fence_virt.protocol import HashType
    from fence_virt.testing import RecordingDispatcher
    from fence_virt_listener_multicast.datagram import check_datagram

    dispatcher = RecordingDispatcher()
    credentials = Credentials(HashType.SHA256, KEY)
    replays = ReplayGuard()
    history = RequestHistory()
    log = logging.getLogger("fuzz.multicast")

    def one(data: bytes) -> int:
        kind, datagram, stream = split_request(data)
        dispatcher.calls.clear()
        try:
            accepted = check_datagram(datagram, KEY, HashType.SHA256)
        except RemoteError:
            return kind
        if replays.age(accepted.request) is not None:
            return kind
        replays.remember(accepted.request)
        key = accepted.history_key
        if not history.claim(key):
            return kind
        channel = MemoryChannel(stream, prove=kind == 2)
        try:
            drive(
                serve(
                    accepted.received,
                    channel,
                    credentials,
                    dispatcher,
                    requester=accepted.host,
                    log=log,
                )
            )
        except RemoteError:
            history.release(key)
        else:
            history.complete(key)
        return kind

    one.dispatcher = dispatcher  # type: ignore[attr-defined]
    return one


def make_stream() -> Callable[[bytes], int]:
    from fence_virt.listening import StreamPolicy, StreamSessions
    from fence_virt.protocol import HashType
    from fence_virt.testing import RecordingDispatcher

    dispatcher = RecordingDispatcher()
    sessions = StreamSessions(
        StreamPolicy(KEY, HashType.SHA256, HashType.SHA256), logging.getLogger("fuzz.stream")
    )

    def one(data: bytes) -> int:
        kind, request, stream = split_request(data)
        dispatcher.calls.clear()
        dispatcher.drops.clear()
        channel = MemoryChannel(request + stream, prove=kind == 2)
        drive(sessions.handle(channel, REQUESTER, dispatcher))
        return kind

    one.dispatcher = dispatcher  # type: ignore[attr-defined]
    return one


def _serves(request: Any, call: tuple[Any, Any]) -> bool:
    """Whether a backend call carries out ``request`` (a serial_req)."""
    operation, target = call
    if operation == "hostlist":
        return bool(request.request == 6)
    return bool(
        request.request == operation
        and request.domain == target.domain
        and request.seqno == target.seqno
    )


def make_serial() -> Callable[[bytes], int]:
    from fence_virt.listening import RequestHistory, SerialRequestReader, Skipped, answer_serial
    from fence_virt.listening.history import request_key
    from fence_virt.testing import RecordingDispatcher

    dispatcher = RecordingDispatcher()
    history = RequestHistory()
    log = logging.getLogger("fuzz.serial")
    guest = "11111111-1111-1111-1111-111111111111"

    def one(data: bytes) -> int:
        dispatcher.calls.clear()
        reader = SerialRequestReader()
        # the first byte sets the chunk size: requests split across reads must still frame
        size = 1 + (data[0] if data else 0)
        served = []
        for start in range(1, len(data), size):
            for event in reader.feed(data[start : start + size]):
                if isinstance(event, Skipped):
                    continue
                claimed = (guest, *request_key(event))
                if not history.claim(claimed):
                    continue
                try:
                    drive(answer_serial(event, guest, dispatcher, log=log))
                finally:
                    history.complete(claimed)
                served.append(event)
        reader.discard()
        sent = [r for r in served if r.encode() in data[1:]]
        for call in dispatcher.calls:
            # every backend call stems from a request the guest sent byte for byte
            if not any(_serves(r, call) for r in sent):
                raise Crash(f"backend call {call!r} without a request in the input")
        return 2 if dispatcher.calls else 0

    one.dispatcher = dispatcher  # type: ignore[attr-defined]
    return one


class _MemorySocket:
    """The agent's connected socket; ``recv`` serves the host's bytes from the input."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step
        self.sent = bytearray()

    def settimeout(self, timeout: float) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def recv(self, size: int) -> bytes:
        if not self._data:
            raise TimeoutError
        chunk = self._data[: min(size, self._step)]
        self._data = self._data[len(chunk) :]
        return chunk


def make_agent_stream() -> Callable[[bytes], int]:
    from fence_virt.agents.options import AgentArgs
    from fence_virt.agents.session import exchange

    args = AgentArgs()
    args.timeout = 1

    def one(data: bytes) -> int:
        step = 1 + (data[0] if data else 0)
        result = exchange(_MemorySocket(data[1:], step), args, KEY)  # type: ignore[arg-type]
        if not -128 <= result <= 255:
            raise Crash(f"result {result} is not a byte")
        return 0

    return one


def make_agent_serial() -> Callable[[bytes], int]:
    from fence_virt.errors import ProtocolError
    from fence_virt.protocol import Response, SerialResponseScanner
    from fence_virt.protocol.hostlist import HostListDecoder

    def one(data: bytes) -> int:
        step = 1 + (data[0] if data else 0)
        chunks = [data[i : i + step] for i in range(1, len(data), step)]
        scanner = SerialResponseScanner()
        while scanner.response is None and chunks:
            scanner.feed(chunks.pop(0))
        found = scanner.response
        if found is None or found.response != Response.HOSTLIST:
            return 0
        decoder = HostListDecoder(serial=True)
        pending = [found.encode() + scanner.unused_data, *chunks]
        try:
            while pending and not decoder.done:
                decoder.feed(pending.pop(0))
        except ProtocolError:
            pass  # documented: a malformed list
        return 0

    return one


FACTORIES: dict[str, Callable[[], Callable[[bytes], int]]] = {
    "multicast": make_multicast,
    "stream": make_stream,
    "serial": make_serial,
    "agent-stream": make_agent_stream,
    "agent-serial": make_agent_serial,
}


def seeds(target: str) -> list[bytes]:
    """A few well-formed inputs to start from (libFuzzer mutates them)."""
    from fence_virt.protocol import FenceRequest, HashType, Operation, SerialRequest

    request = FenceRequest.build(
        Operation.OFF,
        "vm1",
        hashtype=HashType.SHA256,
        seqno=7,
        address=_V4(bytes([127, 0, 0, 1])),
        port=1229,
    ).encode()
    if target in ("multicast", "stream"):
        return [bytes([2]) + request + bytes(64), bytes([0]) + request + bytes(128)]
    if target == "serial":
        return [
            bytes([73]) + SerialRequest(request=Operation.STATUS, domain="vm1", seqno=1).encode(),
            bytes([9]) + SerialRequest(request=Operation.HOSTLIST, domain="", seqno=2).encode(),
        ]
    if target == "agent-stream":
        return [bytes([63]) + bytes(128) + b"\xfd" + bytes(130) + b"\0"]
    return [bytes([4]) + b"\xab\xba\x00\x00\xfd" + bytes(130)]


class _V4:
    version = 4

    def __init__(self, packed: bytes) -> None:
        self.packed = packed


def child(target: str, runs: int, report: Path, corpus: Path) -> None:
    """Fuzz one target in this process; write the figures to ``report`` and exit."""
    import atheris

    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the agent prints its results
    logging.getLogger().setLevel(logging.CRITICAL)  # drop lines are the expected output
    unexpected = _UnexpectedErrors()
    logging.getLogger().addHandler(unexpected)
    logging.getLogger("fence_virt").setLevel(logging.ERROR)
    logging.getLogger("fuzz").setLevel(logging.ERROR)
    with atheris.instrument_imports(include=["fence_virt", "fence_virt_listener_multicast"]):
        one = FACTORIES[target]()
    dispatcher = getattr(one, "dispatcher", None)
    figures = Figures(target, runs)

    def finish(status: int) -> None:
        report.write_text(json.dumps(figures.as_dict()))
        os._exit(status)

    def test_one_input(data: bytes) -> None:
        figures.inputs += 1
        try:
            kind = one(data)
            if unexpected.records:
                record = unexpected.records[0]
                raise Crash(f"logged: {record.getMessage()}")
        except Exception:
            figures.crashes += 1
            report.write_text(json.dumps(figures.as_dict()))
            raise
        calls = len(dispatcher.calls) if dispatcher is not None else 0
        if kind == 2:
            figures.valid += 1
            figures.backend_calls += calls
        else:
            figures.invalid += 1
            if calls:
                figures.invalid_backend_calls += calls
                sys.stderr.write(f"backend called from invalid input {data.hex()}\n")
                finish(1)
        if figures.inputs >= runs:
            finish(0)

    for index, seed in enumerate(seeds(target)):
        (corpus / f"seed-{index}").write_bytes(seed)
    argv = [sys.argv[0], f"-runs={runs + 10}", "-max_len=1024", "-print_final_stats=0"]
    atheris.Setup([*argv, str(corpus)], test_one_input)
    atheris.Fuzz()


def parent(targets: list[str], runs: int) -> int:
    results = []
    status = 0
    for target in targets:
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
            report = Path(tmp) / "report.json"
            corpus = Path(tmp) / "corpus"
            corpus.mkdir()
            command = [sys.executable, __file__, "--child", target, "--runs", str(runs)]
            command += ["--report", str(report), "--corpus", str(corpus)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if not report.exists():
                print(done.stderr[-4000:], file=sys.stderr)
                return 1
            figures = json.loads(report.read_text())
            if done.returncode != 0:
                print(done.stderr[-4000:], file=sys.stderr)
                figures["crashes"] = max(1, figures["crashes"])
                status = 1
            results.append(figures)
            print(json.dumps(figures), flush=True)
    _table(results)
    return status


def _table(results: list[dict[str, Any]]) -> None:
    head = ("target", "inputs", "s", "inputs/s", "invalid", "calls(inv)", "authentic", "calls")
    print(" ".join(f"{h:>12}" for h in head))
    for r in results:
        row = (
            r["target"],
            r["inputs"],
            r["seconds"],
            r["inputs_per_s"],
            r["invalid_inputs"],
            r["backend_calls_from_invalid"],
            r["authentic_inputs"],
            r["backend_calls_from_authentic"],
        )
        print(" ".join(f"{v:>12}" for v in row) + f"   crashes {r['crashes']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child, options.runs, options.report, options.corpus)
        return 0
    unknown = set(options.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    return parent(options.targets or list(TARGETS), options.runs)


if __name__ == "__main__":
    sys.exit(main())
