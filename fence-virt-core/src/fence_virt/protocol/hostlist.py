"""The host-list stream answering a HOSTLIST request (c-suite-spec §2.6).

Plain transports: 0xFD, 130-byte records, a 130-zero-byte terminator, one result byte.
Serial: the 0xFD and the result byte each travel as a 5-byte serial_resp_t instead.
"""

from __future__ import annotations

import struct

from fence_virt.errors import LocalError, ProtocolError
from fence_virt.protocol._fields import check_text, check_uint, decode_lenient_cstring
from fence_virt.protocol._record import Record, store
from fence_virt.protocol.constants import (
    HOSTLIST_MARKER,
    HOSTLIST_RECORD_SIZE,
    MAX_DOMAIN_BYTES,
)
from fence_virt.protocol.serial import SerialResponse, SerialResponseScanner

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final

# c-suite-spec §2.6: domain[64] @0, uuid[64] @64, state u8 @128, pad @129 (ignored)
HOST_STATE_STRUCT: Final = struct.Struct("<64s64sBx")
#: libvirt VIR_DOMAIN_RUNNING, the only state the C client prints as "on"
STATE_RUNNING: Final = 1
HOSTLIST_TERMINATOR: Final = bytes(HOSTLIST_RECORD_SIZE)


class HostState(Record):
    """One host_state_t: a VM's name, UUID text and raw libvirt state.

    Text longer than the 63 bytes a field holds is cut on encoding, as the C host does.
    """

    __slots__ = __match_args__ = ("domain", "uuid", "state")
    domain: str
    uuid: str
    #: raw virDomainState (1 running, 3 paused, 5 shut off, ...)
    state: int

    def __init__(self, domain: str, uuid: str, state: int) -> None:
        store(self, "domain", domain)
        store(self, "uuid", uuid)
        store(self, "state", state)
        check_text(self.domain, "domain")
        check_text(self.uuid, "uuid")
        check_uint(self.state, 8, "state")

    @property
    def is_terminator(self) -> bool:
        """Both strings empty: the C client's end-of-list test."""
        return not self.domain and not self.uuid

    @property
    def running(self) -> bool:
        """The state the C client prints as ``on``."""
        return self.state == STATE_RUNNING

    def encode(self) -> bytes:
        """130 zero-filled bytes (the C host leaks stack bytes at 63, 127 and 129)."""
        return HOST_STATE_STRUCT.pack(_field(self.domain), _field(self.uuid), self.state)

    @classmethod
    def decode(cls, data: bytes) -> HostState:
        """Parse one 130-byte record; only a wrong length is an error.

        Text ends at the first NUL within the first 63 bytes of a field; byte 63 of each
        field and the pad byte are ignored (garbage from C). Invalid UTF-8 (such as a name
        cut mid-character by C's 63-byte limit) becomes U+FFFD.
        """
        if len(data) != HOSTLIST_RECORD_SIZE:
            raise ProtocolError(
                f"host record must be {HOSTLIST_RECORD_SIZE} bytes, got {len(data)}"
            )
        domain, uuid, state = HOST_STATE_STRUCT.unpack(data)
        return cls(
            decode_lenient_cstring(domain[:MAX_DOMAIN_BYTES]),
            decode_lenient_cstring(uuid[:MAX_DOMAIN_BYTES]),
            state,
        )


def _field(text: str) -> bytes:
    """At most 63 UTF-8 bytes of ``text``, cut on a character boundary."""
    return text.encode()[:MAX_DOMAIN_BYTES].decode(errors="ignore").encode()


def encode_hostlist(states: Iterable[HostState], result: int) -> bytes:
    """0xFD, the records, the terminator, then the backend's result byte."""
    return bytes([HOSTLIST_MARKER]) + _encode_records(states) + bytes([_result_byte(result)])


def encode_serial_hostlist(states: Iterable[HostState], result: int) -> bytes:
    """The serial variant: magic-prefixed 0xFD header and magic-prefixed result trailer."""
    header = SerialResponse(HOSTLIST_MARKER).encode()
    return header + _encode_records(states) + SerialResponse(_result_byte(result)).encode()


def _encode_records(states: Iterable[HostState]) -> bytes:
    records = []
    for state in states:
        if state.is_terminator:
            raise LocalError("a host state with empty domain and uuid would end the list")
        records.append(state.encode())
    return b"".join(records) + HOSTLIST_TERMINATOR


def _result_byte(result: int) -> int:
    check_uint(result, 8, "result")
    return result


class HostListDecoder:
    """Sans-IO reader of the answer to a HOSTLIST request, fed in chunks of any size.

    The first response code comes first; if it is not 0xFD the answer is that code alone and
    the decoder is done at once. Otherwise records follow until the terminator, where the
    decoder is done, as the C client is. A result byte (serial: a serial_resp_t) after the
    terminator is recorded in :attr:`result` if it is fed, never waited for.
    """

    def __init__(self, *, serial: bool = False) -> None:
        self._header = SerialResponseScanner() if serial else None
        self._trailer = SerialResponseScanner() if serial else None
        self._buffer = bytearray()
        self._response: int | None = None
        self._result: int | None = None
        self._done = False

    @property
    def done(self) -> bool:
        """The terminator (or a non-list response) has been seen."""
        return self._done

    @property
    def response(self) -> int | None:
        """The leading response code: 0xFD when a list follows, else the whole answer."""
        return self._response

    @property
    def result(self) -> int | None:
        """The backend's result after the terminator, if it was fed (C clients ignore it)."""
        return self._result

    def feed(self, data: bytes) -> list[HostState]:
        """Consume bytes and return the records they completed."""
        if self._done:
            if self._response == HOSTLIST_MARKER:
                self._feed_trailer(data)
            return []
        if self._response is None:
            data = self._feed_header(data)
            if self._response is None or self._done:
                return []
        self._buffer += data
        return self._take_records()

    def _feed_header(self, data: bytes) -> bytes:
        if self._header is None:
            if not data:
                return b""
            self._response, rest = data[0], data[1:]
        else:
            found = self._header.feed(data)
            if found is None:
                return b""
            self._response, rest = found.response, self._header.unused_data
        self._done = self._response != HOSTLIST_MARKER
        return rest

    def _take_records(self) -> list[HostState]:
        states = []
        while len(self._buffer) >= HOSTLIST_RECORD_SIZE:
            state = HostState.decode(bytes(self._buffer[:HOSTLIST_RECORD_SIZE]))
            del self._buffer[:HOSTLIST_RECORD_SIZE]
            if state.is_terminator:
                self._done = True
                rest = bytes(self._buffer)
                self._buffer.clear()
                self._feed_trailer(rest)
                break
            states.append(state)
        return states

    def _feed_trailer(self, data: bytes) -> None:
        if self._result is not None or not data:
            return
        if self._trailer is None:
            self._result = data[0]
        elif (found := self._trailer.feed(data)) is not None:
            self._result = found.response
