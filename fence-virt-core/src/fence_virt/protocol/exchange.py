"""Sans-IO driver for the four-step challenge/response (c-suite-spec §1.2 step 5, §3.2).

The client (fence_xvm / fence_virt) challenges first on every transport: it sends C1, checks
the host's answer, then answers the host's C2. The host does the mirror image. With auth NONE
there is no exchange: the driver starts out done.

Typical use, whatever the transport::

    exchange = AuthExchange.for_client(auth, key)
    while not exchange.done:
        if out := exchange.data_to_send():
            write(out)
        else:
            exchange.receive_data(read(exchange.bytes_needed))
    leftover = exchange.unused_data  # e.g. the result byte, if it came in the same read
"""

from __future__ import annotations

from collections import deque

from fence_virt.errors import AuthenticationError, LocalError
from fence_virt.protocol.auth import (
    challenge_response,
    check_challenge_response,
    exchange_required,
    new_challenge,
)
from fence_virt.protocol.constants import CHALLENGE_SIZE

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.protocol.enums import HashType

# the steps of one side; plain ints, as an Enum class costs every agent start ~60 us
_SEND_CHALLENGE = 1
_CHECK_RESPONSE = 2
_ANSWER_CHALLENGE = 3

# c-suite-spec §3.2 "Roles and order"
_CLIENT_STEPS = (_SEND_CHALLENGE, _CHECK_RESPONSE, _ANSWER_CHALLENGE)
_HOST_STEPS = (_ANSWER_CHALLENGE, _SEND_CHALLENGE, _CHECK_RESPONSE)


class AuthExchange:
    """One side of the handshake. Feed it what the peer sent; write what it gives you."""

    def __init__(
        self, auth: HashType, key: bytes, *, challenger_first: bool, challenge: bytes | None = None
    ) -> None:
        """``challenge`` replaces our fresh random 64-byte challenge (tests only)."""
        self._auth = auth
        self._key = key
        self._challenge = new_challenge() if challenge is None else challenge
        if len(self._challenge) != CHALLENGE_SIZE:
            raise LocalError(f"challenge must be {CHALLENGE_SIZE} bytes")
        steps = _CLIENT_STEPS if challenger_first else _HOST_STEPS
        self._steps: deque[int] = deque(steps if exchange_required(auth) else ())
        self._incoming = bytearray()
        self._outgoing = bytearray()
        self._failed = False
        self._advance()

    @classmethod
    def for_client(
        cls, auth: HashType, key: bytes, *, challenge: bytes | None = None
    ) -> AuthExchange:
        """The fence_xvm / fence_virt side: challenge first, then answer."""
        return cls(auth, key, challenger_first=True, challenge=challenge)

    @classmethod
    def for_host(
        cls, auth: HashType, key: bytes, *, challenge: bytes | None = None
    ) -> AuthExchange:
        """The fence_virtd side: answer first, then challenge."""
        return cls(auth, key, challenger_first=False, challenge=challenge)

    @property
    def done(self) -> bool:
        """Both proofs passed and everything we must send has been taken."""
        return not self._steps and not self._outgoing

    @property
    def bytes_needed(self) -> int:
        """How many more bytes the next step waits for; 0 when output is pending or done."""
        if self._outgoing or not self._steps:
            return 0
        return CHALLENGE_SIZE - len(self._incoming)

    @property
    def unused_data(self) -> bytes:
        """Bytes received beyond the exchange (the start of the result, say)."""
        return bytes(self._incoming) if not self._steps else b""

    def data_to_send(self) -> bytes:
        """Take the bytes to write to the peer now (possibly empty)."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer in chunks of any size; AuthenticationError on a bad proof."""
        if self._failed:
            raise LocalError("authentication exchange already failed")
        self._incoming += data
        self._advance()

    def _advance(self) -> None:
        while self._steps:
            step = self._steps[0]
            if step == _SEND_CHALLENGE:
                self._outgoing += self._challenge
            elif len(self._incoming) < CHALLENGE_SIZE:
                return
            else:
                self._consume(step, bytes(self._incoming[:CHALLENGE_SIZE]))
                del self._incoming[:CHALLENGE_SIZE]
            self._steps.popleft()

    def _consume(self, step: int, chunk: bytes) -> None:
        if step == _ANSWER_CHALLENGE:
            self._outgoing += challenge_response(self._auth, self._key, chunk)
        elif not check_challenge_response(self._auth, self._key, self._challenge, chunk):
            self._failed = True
            raise AuthenticationError("invalid response to challenge (wrong key or auth type?)")
