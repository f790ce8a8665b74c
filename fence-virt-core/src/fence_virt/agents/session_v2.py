"""The agent's side of a protocol v2 connection (``docs/protocol-v2.md``).

After the v2 request: our Nc, the host's Nh and proof (checked before we prove anything),
our proof, then the result frame, accepted only with the host's MAC over the request
digest, both nonces and the result. A failure at any step is a failure (1), never a
fallback to C mode: a host or an attacker that cannot speak v2 gets nothing from us.
Loaded only by a run with ``hash=v2``.
"""

from __future__ import annotations

from fence_virt.agents.console import print_hostlist, say, trace
from fence_virt.agents.runner import NO_RESULT
from fence_virt.errors import AuthenticationError, ProtocolError
from fence_virt.protocol.enums import Response
from fence_virt.protocol.v2 import (
    NONCE_SIZE,
    PROOF_SIZE,
    RESULT_HEADER_SIZE,
    V2Client,
    digest_of,
    result_length,
)

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence

    from fence_virt.agents.console import Traces
    from fence_virt.agents.options import AgentArgs


class _Closed(Exception):
    """The host hung up before sending everything."""


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise _Closed
        data += chunk
    return bytes(data)


def exchange_v2(
    conn: socket.socket, args: AgentArgs, key: bytes, sent: Sequence[bytes], traces: Traces
) -> int:
    """The host's result as C's signed char; :data:`NO_RESULT` when it does not come in
    time, ``Response.FAIL`` for any failure (a wrong proof, a forged or altered result)."""
    client = V2Client(key, [digest_of(request) for request in sent])
    conn.settimeout(args.timeout)
    trace(args.debug, 3, traces.challenging)
    try:
        conn.sendall(client.hello())
        proof = client.check_host(_recv_exactly(conn, NONCE_SIZE + PROOF_SIZE))
        trace(args.debug, 3, traces.responding)
        conn.sendall(proof)
    except (OSError, _Closed, AuthenticationError, ProtocolError):
        say("Invalid response to challenge")
        return Response.FAIL
    trace(args.debug, 2, traces.done)
    trace(args.debug, 3, traces.waiting)
    return _result(conn, client)


def _result(conn: socket.socket, client: V2Client) -> int:
    """Read, authenticate and interpret the result frame."""
    try:
        header = _recv_exactly(conn, RESULT_HEADER_SIZE)
        payload = _recv_exactly(conn, result_length(header))
        payload = client.open_result(header, payload, _recv_exactly(conn, PROOF_SIZE))
    except TimeoutError:
        return NO_RESULT
    except AuthenticationError:
        say("Result refused: not authenticated by the host (protocol v2)")
        return Response.FAIL
    except (OSError, _Closed, ProtocolError):
        return Response.FAIL
    if payload[0] == Response.HOSTLIST:
        return print_hostlist(payload)
    if len(payload) != 1:
        return Response.FAIL
    return payload[0] - 256 if payload[0] >= 128 else payload[0]
