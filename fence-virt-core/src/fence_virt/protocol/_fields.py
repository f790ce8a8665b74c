"""Field helpers shared by the message modules: C strings and unsigned ranges."""

from __future__ import annotations

from fence_virt.errors import LocalError, ProtocolError


def check_uint(value: int, bits: int, field: str) -> None:
    """Raise LocalError unless ``value`` fits an unsigned ``bits``-bit field."""
    if not 0 <= value < 1 << bits:
        raise LocalError(f"{field} must be in 0..{(1 << bits) - 1}, got {value}")


def check_length(value: bytes, size: int, field: str) -> None:
    """Raise LocalError unless ``value`` is exactly ``size`` bytes."""
    if len(value) != size:
        raise LocalError(f"{field} must be {size} bytes, got {len(value)}")


def check_text(text: str, field: str) -> bytes:
    """Return ``text`` as UTF-8 after checking it can live in a C string; else LocalError."""
    if "\0" in text:
        raise LocalError(f"{field} must not contain NUL characters")
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise LocalError(f"{field} is not encodable as UTF-8: {exc.reason}") from None


def check_cstring(text: str, max_bytes: int, field: str) -> bytes:
    """Like :func:`check_text`, and the UTF-8 form must be at most ``max_bytes`` long."""
    raw = check_text(text, field)
    if len(raw) > max_bytes:
        raise LocalError(f"{field} is {len(raw)} bytes in UTF-8, at most {max_bytes} fit")
    return raw


def decode_cstring(raw: bytes, field: str) -> str:
    """Decode a NUL-terminated UTF-8 field; bytes after the first NUL are ignored."""
    end = raw.find(0)
    if end < 0:
        raise ProtocolError(f"{field} field has no NUL terminator")
    try:
        return raw[:end].decode()
    except UnicodeDecodeError:
        raise ProtocolError(f"{field} is not valid UTF-8: {raw[:end]!r}") from None


def decode_lenient_cstring(raw: bytes) -> str:
    """Decode text up to the first NUL (or all of ``raw``), replacing invalid UTF-8."""
    end = raw.find(0)
    return (raw if end < 0 else raw[:end]).decode(errors="replace")
