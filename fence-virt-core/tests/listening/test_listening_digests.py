"""Digests never reach a log line: a wrongly signed request and a wrong proof in the
handshake are logged with the sender and the reason only, rate-limited (issue 17; C prints the
digest it expected, c-suite-spec §9.2, which hands a peer the answer to its own challenge)."""

from __future__ import annotations

import asyncio
import logging
import re

from fence_virt.errors import RemoteError
from fence_virt.listening import StreamPolicy, StreamSessions
from fence_virt.protocol import FenceRequest, HashType, Operation, sign_request
from fence_virt.protocol.auth import challenge_response, keyed_digest
from fence_virt.testing import RecordingDispatcher

KEY = b"the-right-key\n"
REQUESTER = "198.51.100.9"
LOGGER = "test.digests"
HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")


class Channel:
    """The client's bytes, then, once the host wrote ``answer_after`` bytes, ``late``."""

    def __init__(self, data: bytes, late: bytes = b"") -> None:
        self._data = data
        self._late = late
        self.written = bytearray()
        self.timeout = 1.0

    async def read_exactly(self, size: int) -> bytes:
        if len(self._data) < size and len(self.written) >= 128:
            self._data += self._late
            self._late = b""
        if len(self._data) < size:
            raise RemoteError("connection closed")
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk

    async def write(self, data: bytes) -> None:
        self.written += data


def request(seqno: int, key: bytes) -> bytes:
    built = FenceRequest.build(Operation.OFF, "vm1", hashtype=HashType.SHA256, seqno=seqno)
    return sign_request(built, key).encode()


def logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_wrong_signatures_are_logged_with_sender_and_reason_rate_limited(caplog) -> None:
    sessions = StreamSessions(
        StreamPolicy(KEY, HashType.SHA256, HashType.SHA256), logging.getLogger(LOGGER)
    )
    dispatcher = RecordingDispatcher()
    forged = [request(seqno, b"a-guessed-key\n") for seqno in range(300)]

    async def main() -> None:
        for data in forged:
            assert await sessions.handle(Channel(data), REQUESTER, dispatcher) is None
        assert sessions.drops.suppressed > 0
        sessions.drops.flush()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    lines = logged(caplog)
    assert dispatcher.calls == []
    mismatches = [m for m in lines if "sha256 signature mismatch" in m]
    assert 0 < len(mismatches) < 300, "rate-limited"
    assert all(f"from {REQUESTER}:" in m for m in mismatches)
    assert f"{300 - len(mismatches)} more dropped connections not logged" in lines
    sent = {data[112:144].hex() for data in forged}
    expected = {
        keyed_digest(HashType.SHA256, KEY, data[:112] + bytes(64))[:32].hex() for data in forged
    }
    for line in lines:
        assert not HEX_RUN.search(line), line
        assert not any(digest[:16] in line for digest in sent | expected)


def test_a_wrong_proof_in_the_handshake_is_logged_without_digests(caplog) -> None:
    sessions = StreamSessions(
        StreamPolicy(KEY, HashType.SHA256, HashType.SHA256), logging.getLogger(LOGGER)
    )
    dispatcher = RecordingDispatcher()
    challenge = bytes(range(64))
    wrong_proof = bytes(64)
    channel = Channel(request(1, KEY) + challenge, late=wrong_proof)

    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(sessions.handle(channel, REQUESTER, dispatcher)) is None
    assert dispatcher.calls == []
    lines = logged(caplog)
    assert any(f"from {REQUESTER}:" in m and "invalid response to challenge" in m for m in lines), (
        lines
    )
    our_answer = challenge_response(HashType.SHA256, KEY, challenge)
    host_challenge = bytes(channel.written[64:128])
    right_proof = challenge_response(HashType.SHA256, KEY, host_challenge)
    for line in lines:
        assert not HEX_RUN.search(line), line
        for secret in (our_answer, right_proof, host_challenge):
            assert secret[:8].hex() not in line
