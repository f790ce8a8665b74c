"""fence_virt's direct transports: TCP (``-T``) and vsock (``-S``), c-suite-spec §1.3, §1.4, §4.7.

One connection to fence_virtd's tcp or vsock listener carries everything: we connect
(3 s), write the signed 176-byte request (no connect-back address: addrlen, address, port
and family zero), then run :func:`fence_virt.agents.session.exchange` on the same
connection. Only a run that sends imports this module (see :mod:`fence_virt.agents.virt`).

The connect functions are parameters so that tests can hand in the other end of a
socketpair: nothing on these machines can accept an ``AF_VSOCK`` connection locally.
"""

from __future__ import annotations

import socket

from fence_virt.agents.connect import CONNECT_TIMEOUT, connect_tcp
from fence_virt.agents.connect import reason as _reason
from fence_virt.agents.console import TCP_TRACES, VSOCK_TRACES, say, say_text, warn
from fence_virt.agents.runner import new_seqno
from fence_virt.agents.session import exchange, signed_request
from fence_virt.protocol.enums import Response

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Callable

    from fence_virt.agents.console import Traces
    from fence_virt.agents.options import AgentArgs

    #: ``connect(address, port)``: a connected stream socket, or OSError
    Connect = Callable[[str | int, int], socket.socket]


class SocketUnavailable(OSError):
    """The kernel would not make the socket at all (no vsock support in this guest)."""


def vsock_socket() -> socket.socket:
    """An unconnected ``AF_VSOCK`` stream socket (OSError where the kernel has no vsock)."""
    return socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)


def connect_vsock(cid: str | int, port: int) -> socket.socket:
    """A vsock connection to ``(cid, port)`` within :data:`CONNECT_TIMEOUT` (C blocks).

    Raises :class:`SocketUnavailable` when no vsock socket can be made, else OSError.
    """
    try:
        sock = vsock_socket()
    except OSError as exc:
        raise SocketUnavailable(exc.errno, exc.strerror) from exc
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect((int(cid), port))
    except BaseException:
        sock.close()
        raise
    return sock


def fence_tcp(args: AgentArgs, key: bytes, connect: Connect | None = None) -> int:
    """One request to ``args.ipaddr:args.port``; the host's result, as for multicast.

    ``connect`` defaults to :func:`connect_tcp` (looked up at call time).
    """
    return _fence(args, key, args.ipaddr or "", connect or connect_tcp, TCP_TRACES)


def fence_vsock(args: AgentArgs, key: bytes, connect: Connect | None = None) -> int:
    """One request to vsock ``args.cid:args.port``; the host's result, as for multicast.

    ``connect`` defaults to :func:`connect_vsock` (looked up at call time).
    """
    return _fence(args, key, args.cid, connect or connect_vsock, VSOCK_TRACES)


def _fence(args: AgentArgs, key: bytes, host: str | int, connect: Connect, traces: Traces) -> int:
    request = signed_request(args, key, new_seqno())
    try:
        conn = connect(host, args.port)
    except OSError as exc:
        _connect_failed(exc, host, args.port)
        return Response.FAIL
    try:
        try:
            conn.settimeout(args.timeout)
            conn.sendall(request)
        except OSError as exc:
            # C's perror("write")
            warn(f"write: {_reason(exc)}")
            return Response.FAIL
        return exchange(conn, args, key, traces, sent=(request,))
    finally:
        conn.close()


def _connect_failed(exc: OSError, host: str | int, port: int) -> None:
    """C's two messages; the reason is the real one (C's can be a later call's errno)."""
    if isinstance(exc, SocketUnavailable):
        # C prints this one without a newline; "Operation failed" follows on the same line
        say_text(f"Unable to create vsock: {_reason(exc)}")
        return
    say(f"Unable to connect to fence_virtd host {host}:{port} {_reason(exc)}")
