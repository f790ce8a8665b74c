"""The messages hosts exchange over the broker: small JSON objects, one per AMQP message.

Routing keys on the cluster's topic exchange (one exchange per guest cluster)::

    announce       every host's queue: a host's complete list of local VMs
    host.N         host N's queue only: requests to host N, and replies to host N

Bodies (UTF-8 JSON)::

    {"v": 1, "kind": "announce", "host": 2, "hello": false,
     "vms": [["vm1", "1111...-...", 1], ...]}          # name, UUID, libvirt state
    {"v": 1, "kind": "request", "host": 1, "op": "off", "vm": "vm1", "client_seqno": 7,
     "sent": 1764554400.25}                              # requester's clock, epoch seconds
    {"v": 1, "kind": "reply", "host": 2, "response": 0}

A request carries the AMQP ``correlation_id`` (``HOST:SEQ``, also the request id in every
log) and ``reply_to`` (``host.N`` of the requester); its reply carries the same
``correlation_id``. ``hello`` asks every host to announce at once (a host that just started).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fence_virt.errors import ProtocolError

__all__ = ["VERSION", "Announce", "Reply", "Request", "decode", "encode", "host_key"]

VERSION = 1


def host_key(host: int) -> str:
    """The routing key of host ``host``'s queue."""
    return f"host.{host}"


@dataclass(frozen=True, slots=True)
class Announce:
    host: int
    vms: tuple[tuple[str, str, int], ...]
    hello: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    host: int
    op: str
    vm: str
    client_seqno: int = 0
    #: when the requester sent it (seconds since the epoch, its clock)
    sent: float = 0.0


@dataclass(frozen=True, slots=True)
class Reply:
    host: int
    response: int


Message = Announce | Request | Reply


def encode(message: Message) -> bytes:
    """The JSON body of ``message``."""
    body: dict[str, Any] = {"v": VERSION, "host": message.host}
    if isinstance(message, Announce):
        body.update(kind="announce", hello=message.hello, vms=[list(vm) for vm in message.vms])
    elif isinstance(message, Request):
        body.update(
            kind="request",
            op=message.op,
            vm=message.vm,
            client_seqno=message.client_seqno,
            sent=message.sent,
        )
    else:
        body.update(kind="reply", response=message.response)
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    """Parse a body; :class:`ProtocolError` for anything malformed or of another version."""
    try:
        body = json.loads(data)
        if body.get("v") != VERSION:
            raise ProtocolError(f"message version {body.get('v')!r}, expected {VERSION}")
        host = _int(body["host"])
        kind = body["kind"]
        if kind == "announce":
            vms = tuple((str(n), str(u), _int(s)) for n, u, s in body["vms"])
            return Announce(host, vms, bool(body.get("hello", False)))
        if kind == "request":
            sent = body["sent"]
            if isinstance(sent, bool) or not isinstance(sent, int | float):
                raise ValueError(f"sent must be a number, got {sent!r}")
            return Request(
                host, str(body["op"]), str(body["vm"]), _int(body["client_seqno"]), float(sent)
            )
        if kind == "reply":
            return Reply(host, _int(body["response"]))
    except ProtocolError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"malformed message: {exc!r}") from None
    raise ProtocolError(f"unknown message kind {kind!r}")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value
