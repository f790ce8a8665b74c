"""serial_req_t / serial_resp_t of the serial and vmchannel transports (c-suite-spec §2.7).

No keys and no signatures: the host trusts the socket the request came in on.
"""

from __future__ import annotations

import struct

from fence_virt.errors import LocalError, ProtocolError
from fence_virt.protocol._fields import check_cstring, check_length, check_uint, decode_cstring
from fence_virt.protocol._record import Record, store
from fence_virt.protocol.constants import (
    MAX_DOMAIN_BYTES,
    SERIAL_MAGIC,
    SERIAL_REQ_SIZE,
    SERIAL_RESP_SIZE,
)
from fence_virt.protocol.enums import Operation

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from typing import Final

# c-suite-spec §2.7: magic @0, request @4, flags @5, domain @6, seqno u32 LE @70
SERIAL_REQ_STRUCT: Final = struct.Struct("<4sBB64sI")
# c-suite-spec §2.7: magic @0, response @4
SERIAL_RESP_STRUCT: Final = struct.Struct("<4sB")


class SerialRequest(Record):
    """One 74-byte serial_req_t; ``request`` stays a raw int so unknown codes decode."""

    # field order: repr, equality, __dataclass_fields__ and pickles follow it
    __slots__ = ("request", "domain", "seqno", "flags", "magic")  # noqa: RUF023
    request: int
    domain: str
    seqno: int
    #: always 0 from the C client; ignored by the C host
    flags: int
    #: the C host does not check it; :meth:`decode` keeps whatever arrived
    magic: bytes

    def __init__(
        self,
        *,
        request: int,
        domain: str = "",
        seqno: int = 0,
        flags: int = 0,
        magic: bytes = SERIAL_MAGIC,
    ) -> None:
        store(self, "request", request)
        store(self, "domain", domain)
        store(self, "seqno", seqno)
        store(self, "flags", flags)
        store(self, "magic", magic)
        check_length(self.magic, len(SERIAL_MAGIC), "magic")
        check_uint(self.request, 8, "request")
        check_uint(self.flags, 8, "flags")
        check_cstring(self.domain, MAX_DOMAIN_BYTES, "domain")
        check_uint(self.seqno, 32, "seqno")

    @property
    def operation(self) -> Operation | None:
        """The operation, or None for a code the protocol does not define."""
        try:
            return Operation(self.request)
        except ValueError:
            return None

    @property
    def magic_ok(self) -> bool:
        """The magic is SERIAL_MAGIC."""
        return self.magic == SERIAL_MAGIC

    def encode(self) -> bytes:
        """The 74 wire bytes."""
        return SERIAL_REQ_STRUCT.pack(
            self.magic, self.request, self.flags, self.domain.encode(), self.seqno
        )

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = False) -> SerialRequest:
        """Parse exactly 74 bytes; ``strict`` also rejects a wrong magic (the C host does not)."""
        if len(data) != SERIAL_REQ_SIZE:
            raise ProtocolError(f"serial request must be {SERIAL_REQ_SIZE} bytes, got {len(data)}")
        magic, request, flags, domain, seqno = SERIAL_REQ_STRUCT.unpack(data)
        if strict and magic != SERIAL_MAGIC:
            raise ProtocolError(f"serial request has bad magic {magic.hex()}")
        return cls(
            request=request,
            domain=decode_cstring(domain, "domain"),
            seqno=seqno,
            flags=flags,
            magic=magic,
        )


class SerialResponse(Record):
    """One 5-byte serial_resp_t: the magic and a response code."""

    __slots__ = __match_args__ = ("response",)
    response: int

    def __init__(self, response: int) -> None:
        store(self, "response", response)
        check_uint(self.response, 8, "response")

    def encode(self) -> bytes:
        """The 5 wire bytes."""
        return SERIAL_RESP_STRUCT.pack(SERIAL_MAGIC, self.response)

    @classmethod
    def decode(cls, data: bytes) -> SerialResponse:
        """Parse exactly 5 bytes starting with the magic."""
        if len(data) != SERIAL_RESP_SIZE:
            raise ProtocolError(
                f"serial response must be {SERIAL_RESP_SIZE} bytes, got {len(data)}"
            )
        magic, response = SERIAL_RESP_STRUCT.unpack(data)
        if magic != SERIAL_MAGIC:
            raise ProtocolError(f"serial response has bad magic {magic.hex()}")
        return cls(response)


class SerialResponseScanner:
    """Find the first magic + response byte in a noisy byte stream, fed in any chunks.

    Unlike the C client's matcher, a partial match never hides a real one (``aabba`` + code
    is found); at most 4 bytes are buffered while searching.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._response: SerialResponse | None = None
        self._unused = b""
        self._skipped = 0

    @property
    def done(self) -> bool:
        """A response has been found."""
        return self._response is not None

    @property
    def response(self) -> SerialResponse | None:
        """The response found, if any."""
        return self._response

    @property
    def unused_data(self) -> bytes:
        """Bytes that followed the response in the last chunk fed (host-list records, say)."""
        return self._unused

    @property
    def skipped(self) -> int:
        """Noise bytes discarded before the magic."""
        return self._skipped

    def feed(self, data: bytes) -> SerialResponse | None:
        """Scan more bytes; returns the response once found. LocalError if fed after that."""
        if self._response is not None:
            raise LocalError("serial response already found; read unused_data instead")
        self._buffer += data
        start = self._buffer.find(SERIAL_MAGIC)
        if start < 0:
            self._discard(len(self._buffer) - (len(SERIAL_MAGIC) - 1))
            return None
        self._discard(start)
        if len(self._buffer) < SERIAL_RESP_SIZE:
            return None
        self._response = SerialResponse.decode(bytes(self._buffer[:SERIAL_RESP_SIZE]))
        self._unused = bytes(self._buffer[SERIAL_RESP_SIZE:])
        self._buffer.clear()
        return self._response

    def _discard(self, count: int) -> None:
        if count > 0:
            del self._buffer[:count]
            self._skipped += count
