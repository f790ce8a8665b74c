"""One connection to a host: the signed request, challenge/response, then the result.

Shared by every transport that talks fence_req over a byte stream (c-suite-spec §1.2-§1.4):
fence_xvm's multicast connect-back and fence_virt's TCP and vsock connections. Each names
itself in the ``-d`` traces the way its C counterpart does (:class:`Traces`).

Every handshake failure (EOF, reset, timeout, wrong proof) is a failure (1), never success:
fence-virt bug rhbz#720767 made a host without the key able to fake a fenced VM.
"""

from __future__ import annotations

import errno
import os

from fence_virt.agents.console import (
    MULTICAST_TRACES,
    Traces,
    list_line,
    say,
    say_raw,
    say_text,
    trace,
)
from fence_virt.agents.runner import NO_RESULT
from fence_virt.errors import AuthenticationError
from fence_virt.protocol.auth import sign_request
from fence_virt.protocol.constants import CHALLENGE_SIZE
from fence_virt.protocol.enums import HashType, RequestFlag, Response
from fence_virt.protocol.exchange import AuthExchange
from fence_virt.protocol.fence_request import FenceRequest

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence

    from fence_virt.agents.addresses import LocalAddress
    from fence_virt.agents.options import AgentArgs

_RECV_SIZE = 4096


def signed_request(
    args: AgentArgs, key: bytes, seqno: int, source: LocalAddress | None = None
) -> bytes:
    """The signed 176-byte fence_req_t of this run (c-suite-spec §2.2, §2.4).

    ``source`` is the multicast connect-back address (its port is ``args.port``); TCP and
    vsock requests carry none: addrlen, address, port and family stay zero, as in C.
    """
    request = FenceRequest.build(
        args.op,
        args.domain or "",
        hashtype=HashType(args.hash),
        seqno=seqno,
        flags=RequestFlag.UUID if args.use_uuid else RequestFlag(0),
        address=source,
        port=0 if source is None else args.port,
    )
    if args.protocol_v2:
        # only a v2 run loads hmac and OpenSSL
        from fence_virt.protocol.v2 import sign_v2  # noqa: PLC0415

        return sign_v2(request, key).encode()
    if args.hash is HashType.NONE:
        trace(args.debug, 3, "sign_request: no-op (HASH_NONE)")
    return sign_request(request, key).encode()


def exchange(
    conn: socket.socket,
    args: AgentArgs,
    key: bytes,
    traces: Traces = MULTICAST_TRACES,
    sent: Sequence[bytes] = (),
) -> int:
    """Authenticate both ways, then return the host's result as C's signed char.

    Each step may take ``args.timeout`` seconds. Returns :data:`NO_RESULT` when the result
    byte does not come in time, ``Response.FAIL`` for any failure before it. ``sent``: the
    requests sent in this run, which a protocol v2 host must prove one of
    (:mod:`fence_virt.agents.session_v2`).
    """
    if args.protocol_v2:
        from fence_virt.agents.session_v2 import exchange_v2  # noqa: PLC0415

        return exchange_v2(conn, args, key, sent, traces)
    return _exchange_c(conn, args, key, traces)


def _exchange_c(conn: socket.socket, args: AgentArgs, key: bytes, traces: Traces) -> int:
    """C mode (c-suite-spec §3.2, §2.5): the challenges, then one result byte or a list."""
    conn.settimeout(args.timeout)
    trace(args.debug, 3, traces.challenging)
    if not _authenticate(conn, args, key, traces):
        say("Invalid response to challenge")
        return Response.FAIL
    trace(args.debug, 2, traces.done)
    trace(args.debug, 3, traces.waiting)
    try:
        first = conn.recv(1)
    except TimeoutError:
        return NO_RESULT
    except OSError:
        return Response.FAIL
    if not first:
        return Response.FAIL
    if first[0] == Response.HOSTLIST:
        return _read_hostlist(conn, first)
    return first[0] - 256 if first[0] >= 128 else first[0]


def _authenticate(conn: socket.socket, args: AgentArgs, key: bytes, traces: Traces) -> bool:
    """Our challenge first, then the host's (c-suite-spec §3.2); False on any failure."""
    handshake = AuthExchange.for_client(HashType(args.auth), key)
    if handshake.done:
        # AUTH_NONE: C's sock_challenge and sock_response are no-ops that say so
        trace(args.debug, 3, "sock_challenge: no-op (AUTH_NONE)")
        trace(args.debug, 3, traces.responding)
        trace(args.debug, 3, "sock_response: no-op (AUTH_NONE)")
        return True
    received = 0
    try:
        while not handshake.done:
            if out := handshake.data_to_send():
                conn.sendall(out)
                continue
            try:
                data = conn.recv(handshake.bytes_needed)
            except TimeoutError:
                _read_failed(args.debug, received, "select", os.strerror(errno.ETIMEDOUT))
                return False
            except OSError as exc:
                _read_failed(args.debug, received, "reading", exc.strerror)
                return False
            if not data:
                _read_failed(args.debug, received, "reading", os.strerror(errno.EPIPE))
                return False
            received += len(data)
            handshake.receive_data(data)
            if received == CHALLENGE_SIZE:
                # the host proved itself; now it challenges us
                trace(args.debug, 3, traces.responding)
    except (OSError, AuthenticationError):
        return False
    return True


def _read_failed(debug: int, received: int, what: str, reason: str | None) -> None:
    """C's diagnostic when a read of the handshake fails (simple_auth.c).

    While it waits for the host's answer to our challenge the C agent prints it always, and
    without a newline, so "Invalid response to challenge" follows on the same line; kept byte
    for byte. While it waits for the host's challenge it prints only from ``-d 2`` on.
    """
    if received < CHALLENGE_SIZE:
        if what == "select":
            say(f"Error: select: {reason}")
        else:
            say_text(f"Error reading challenge response: {reason}")
    elif what == "select":
        trace(debug, 2, f"Error: select: {reason}")
    else:
        trace(debug, 2, f"Error reading challenge hash: {reason}")


def _read_hostlist(conn: socket.socket, first: bytes) -> int:
    """Print each record until the all-zero terminator; a list cut short is a failure."""
    # only list operations load the host-list codec
    from fence_virt.protocol.hostlist import HostListDecoder  # noqa: PLC0415

    decoder = HostListDecoder()
    decoder.feed(first)
    while not decoder.done:
        try:
            data = conn.recv(_RECV_SIZE)
        except TimeoutError:
            say("Timed out!")
            return Response.FAIL
        except OSError:
            data = b""
        if not data:
            say("Bad read!")
            return Response.FAIL
        for state in decoder.feed(data):
            say_raw(list_line(state))
    return 0
