"""The C cpg backend's messages, byte for byte (c-suite-spec §6.2, recipes §5b).

Every message is 156 bytes: a 16-byte ``wire_msg`` header ``{u32 type, u32 seqno, u32
target, u32 pad}`` and a 140-byte payload, in the sending host's byte order with natural
sizes (C copies the structs as they are in memory; every host of one cluster shares an
architecture, so this is little-endian on x86-64). Payloads:

* REQUEST / REPLY: ``cpg_fence_req {char vm_name[128]; int32 request; u32 seqno; u32
  response;}``
* STORE_VM: ``virt_state_t {char v_name[65]; char v_uuid[65]; (2 pad bytes) u32 s_owner;
  int32 s_state;}``

C leaves the header's ``pad`` uninitialised (except in STORE_VM); we send zeros and ignore it.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from fence_virt.errors import ProtocolError

__all__ = [
    "BROADCAST",
    "MESSAGE_SIZE",
    "FenceMessage",
    "MessageType",
    "StoreVm",
    "decode",
    "encode",
]

#: "=": native byte order (as C's memcpy sends it), standard sizes, no alignment padding
_HEADER = struct.Struct("=IIII")
_FENCE_REQ = struct.Struct("=128siII")
_VIRT_STATE = struct.Struct("=65s65s2xIi")
#: header + the larger payload; C always sends the whole struct
MESSAGE_SIZE = _HEADER.size + _FENCE_REQ.size
#: target of REQUEST and STORE_VM: every member
BROADCAST = 0xFFFFFFFF
#: vm_name holds at most 127 bytes and a NUL; v_name/v_uuid 64 and a NUL
_NAME_MAX = 127
_STATE_TEXT_MAX = 64

assert _FENCE_REQ.size == _VIRT_STATE.size == 140
assert MESSAGE_SIZE == 156


class MessageType(enum.IntEnum):
    REQUEST = 0
    REPLY = 1
    STORE_VM = 2


@dataclass(frozen=True, slots=True)
class FenceMessage:
    """REQUEST (``target`` = BROADCAST) or REPLY (``target`` = the requester's node id)."""

    kind: MessageType
    #: wire seqno: the requesting host's counter, copied into the REPLY
    seqno: int
    target: int
    vm_name: str
    #: fence_virt.protocol.Operation number
    request: int
    #: the client's seqno (C: for off/on; 0 for reboot and status)
    client_seqno: int = 0
    #: fence_virt.protocol.Response number (REPLY only)
    response: int = 0


@dataclass(frozen=True, slots=True)
class StoreVm:
    """One STORE_VM: ``owner`` (a node id) holds the VM in libvirt ``state``."""

    name: str
    uuid: str
    owner: int
    state: int


Message = FenceMessage | StoreVm


def _text(raw: bytes, field: str) -> str:
    try:
        return raw.split(b"\0", 1)[0].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"cpg {field} is not UTF-8: {raw[:16]!r}...") from exc


def _fixed(text: str, limit: int, field: str) -> bytes:
    raw = text.encode()
    if len(raw) > limit:
        raise ProtocolError(f"cpg {field} longer than {limit} bytes: {text!r}")
    return raw


def encode(message: Message) -> bytes:
    """156 bytes as the C backend sends them.

    :raises ProtocolError: a name longer than the C field (127 bytes for a request, 64 for
        STORE_VM names and UUIDs).
    """
    if isinstance(message, StoreVm):
        header = _HEADER.pack(MessageType.STORE_VM, 0, BROADCAST, 0)
        payload = _VIRT_STATE.pack(
            _fixed(message.name, _STATE_TEXT_MAX, "v_name"),
            _fixed(message.uuid, _STATE_TEXT_MAX, "v_uuid"),
            message.owner,
            message.state,
        )
        return header + payload
    header = _HEADER.pack(message.kind, message.seqno, message.target, 0)
    payload = _FENCE_REQ.pack(
        _fixed(message.vm_name, _NAME_MAX, "vm_name"),
        message.request,
        message.client_seqno,
        message.response,
    )
    return header + payload


def decode(data: bytes) -> Message:
    """Parse one delivered message.

    :raises ProtocolError: shorter than 156 bytes, or an unknown type.
    """
    if len(data) < MESSAGE_SIZE:
        raise ProtocolError(f"cpg message of {len(data)} bytes, expected {MESSAGE_SIZE}")
    kind, seqno, target, _pad = _HEADER.unpack_from(data)
    if kind == MessageType.STORE_VM:
        name, uuid, owner, state = _VIRT_STATE.unpack_from(data, _HEADER.size)
        return StoreVm(_text(name, "v_name"), _text(uuid, "v_uuid"), owner, state)
    if kind not in (MessageType.REQUEST, MessageType.REPLY):
        raise ProtocolError(f"cpg message type {kind} is not REQUEST, REPLY or STORE_VM")
    vm_name, request, client_seqno, response = _FENCE_REQ.unpack_from(data, _HEADER.size)
    return FenceMessage(
        MessageType(kind),
        seqno,
        target,
        _text(vm_name, "vm_name"),
        request,
        client_seqno,
        response,
    )
