"""Sans-IO framing of serial_req_t in a byte stream (serial and vmchannel listeners).

A guest's serial port or vmchannel socket is a plain byte stream: requests are 74 bytes
(c-suite-spec §2.7) with no length prefix, and anything else the guest writes there (a
console line, a request cut off when its client was killed) would shift every later
request. The C host reads 74 bytes at a time and checks nothing, so one stray byte
misframes the socket until the daemon restarts. Here a request starts at the 4-byte magic
``abba``: bytes before it are skipped. A 74-byte frame at a magic must also look like what
a client sends -- the C client and ours zero the whole struct before filling it -- or it is
skipped up to the next magic, so a real request that begins inside it is still found:

* the domain is NUL-terminated UTF-8 and the rest of its 64-byte field is zero (a request
  cut short and followed by the next one fails this: the next magic lands in the padding;
  a cut within the last 4 bytes, the seqno, cannot be seen -- :meth:`~SerialRequestReader.
  discard` after a quiet second covers it);
* no flag bits other than RF_UUID (a magic made of noise ``abb`` and the ``a`` of a real
  request has ``b`` as its flags byte).

C clients always send such frames, so they are unaffected; a request with a wrong magic or
stray bytes in it, which the C host would carry out, is dropped.

Typical use, per guest stream (``guest`` is the UUID of the domain owning the socket)::

    reader = SerialRequestReader()
    while data := await read():                 # chunks of any size, single bytes too
        for event in reader.feed(data):
            if isinstance(event, Skipped):
                drops.drop(guest, f"{event.size} bytes: {event.reason}")
            elif history.claim(claimed := request_key(event)):
                try:
                    await write(await answer_serial(event, guest, dispatcher, log=log))
                finally:
                    history.complete(claimed)

When the guest goes quiet with part of a request buffered (C gives each 74-byte read 1 s),
:meth:`SerialRequestReader.discard` drops it, so it cannot swallow the start of the next one.

Accounting: every byte fed ends up in exactly one request, one :class:`Skipped` or
:attr:`SerialRequestReader.buffered`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fence_virt.errors import ProtocolError
from fence_virt.protocol import RF_UUID, SERIAL_MAGIC, SERIAL_REQ_SIZE, SerialRequest

__all__ = ["NO_MAGIC", "SerialRequestReader", "Skipped"]

#: :attr:`Skipped.reason` for bytes that precede the next magic
NO_MAGIC = "no serial magic"

#: c-suite-spec §2.7: ``domain[64]`` at offset 6
_DOMAIN_FIELD = slice(6, 70)


@dataclass(frozen=True, slots=True)
class Skipped:
    """Bytes the reader dropped while looking for the next request."""

    #: how many bytes, at least 1
    size: int
    #: :data:`NO_MAGIC`, why a frame at a magic did not decode, or the reason given to
    #: :meth:`SerialRequestReader.discard`
    reason: str


class SerialRequestReader:
    """Feed it the guest's bytes; it hands back each complete serial_req_t, in order.

    Holds at most 73 bytes between calls (a partial request or a partial magic).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held toward the next request (a partial magic or a partial request)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[SerialRequest | Skipped]:
        """Consume ``data``; return the requests it completed and the bytes it skipped, in
        stream order: one :class:`Skipped` per run of bytes before a magic (within this
        call) and one per frame that did not decode."""
        self._buffer += data
        events: list[SerialRequest | Skipped] = []
        noise = 0
        while True:
            start = self._buffer.find(SERIAL_MAGIC)
            if start < 0:
                noise += self._drop(len(self._buffer) - _magic_prefix_at_end(self._buffer))
                break
            noise += self._drop(start)
            if len(self._buffer) < SERIAL_REQ_SIZE:
                break
            if noise:
                events.append(Skipped(noise, NO_MAGIC))
                noise = 0
            events.append(self._take_frame())
        if noise:
            events.append(Skipped(noise, NO_MAGIC))
        return events

    def discard(self, reason: str = "incomplete request") -> Skipped | None:
        """Drop what is buffered, e.g. when the guest went quiet in the middle of a request;
        None if nothing was buffered."""
        size = self._drop(len(self._buffer))
        return Skipped(size, reason) if size else None

    def _take_frame(self) -> SerialRequest | Skipped:
        """Decode the 74 bytes at the magic at the start of the buffer, or skip them up to
        the next magic (which may begin inside them)."""
        frame = bytes(self._buffer[:SERIAL_REQ_SIZE])
        try:
            request = _decode(frame)
        except ProtocolError as exc:
            following = self._buffer.find(SERIAL_MAGIC, 1)
            if following < 0:
                following = len(self._buffer) - _magic_prefix_at_end(self._buffer)
            return Skipped(self._drop(following), f"not a serial request: {exc}")
        self._drop(SERIAL_REQ_SIZE)
        return request

    def _drop(self, size: int) -> int:
        del self._buffer[:size]
        return size


def _decode(frame: bytes) -> SerialRequest:
    """The request in a 74-byte frame at a magic; ProtocolError unless a client could have
    sent it (see the module docstring)."""
    request = SerialRequest.decode(frame, strict=True)
    if request.flags & ~RF_UUID:
        raise ProtocolError(f"unknown flags 0x{request.flags:02x}")
    field = frame[_DOMAIN_FIELD]
    if any(field[field.index(0) :]):
        raise ProtocolError("bytes after the domain's NUL terminator")
    return request


def _magic_prefix_at_end(buffer: bytearray) -> int:
    """Length of the longest end of ``buffer`` that could be the start of a magic."""
    for size in range(len(SERIAL_MAGIC) - 1, 0, -1):
        if buffer.endswith(SERIAL_MAGIC[:size]):
            return size
    return 0
