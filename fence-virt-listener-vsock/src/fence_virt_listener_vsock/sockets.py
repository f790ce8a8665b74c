"""The listening ``AF_VSOCK`` socket and the requester of a vsock peer.

C (vsock.c) binds ``VMADDR_CID_ANY`` and the port with a backlog of 1; here the backlog is
``SOMAXCONN``, because clients wait there while every ``max_connections`` slot is busy.
A vsock peer cannot choose its CID: the hypervisor assigns it, which is what the static
map's ``ip`` entries name for vsock (c-suite-spec §7.3).
"""

from __future__ import annotations

import socket
from typing import Any

from fence_virt.errors import UserError
from fence_virt_listener_vsock.settings import VsockSettings

__all__ = ["open_listening_socket", "peer_cid", "vsock_problem"]


def vsock_problem() -> str | None:
    """Why no vsock socket can be made here, or None; makes one and closes it unbound."""
    family = getattr(socket, "AF_VSOCK", None)
    if family is None:
        return "this Python has no AF_VSOCK support"
    try:
        socket.socket(family, socket.SOCK_STREAM).close()
    except OSError as exc:
        return f"the kernel offers no vsock sockets: {exc.strerror or exc}"
    return None


def open_listening_socket(settings: VsockSettings) -> socket.socket:
    """A listening, non-blocking vsock socket on every CID. :raises UserError: naming the
    port when it cannot be bound (in use, no vsock support)."""
    problem = vsock_problem()
    if problem is not None:
        raise UserError(problem)
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        try:
            sock.bind((socket.VMADDR_CID_ANY, settings.port))
        except OSError as exc:
            reason = exc.strerror or exc
            raise UserError(f"cannot listen on vsock port {settings.port}: {reason}") from exc
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def peer_cid(address: Any) -> str:
    """The requester identity of a vsock peer ``(cid, port)``: the CID in decimal."""
    cid, _port = address
    return str(int(cid))
