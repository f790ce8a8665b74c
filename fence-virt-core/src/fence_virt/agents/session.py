"""One connection to a host: challenge/response, then the result byte or the host list.

Every handshake failure (EOF, reset, timeout, wrong proof) is a failure (1), never success:
fence-virt bug rhbz#720767 made a host without the key able to fake a fenced VM.
"""

from __future__ import annotations

import errno
import os

from fence_virt.agents.console import say, say_raw, say_text, trace
from fence_virt.errors import AuthenticationError
from fence_virt.protocol.constants import CHALLENGE_SIZE
from fence_virt.protocol.enums import HashType, Response
from fence_virt.protocol.exchange import AuthExchange

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    import socket

    from fence_virt.agents.options import AgentArgs
    from fence_virt.protocol.hostlist import HostState

#: C reads the result into a ``char``: -1 stands for "no result" (a local failure)
NO_RESULT = -1
_RECV_SIZE = 4096


def exchange(conn: socket.socket, args: AgentArgs, key: bytes) -> int:
    """Authenticate both ways, then return the host's result as C's signed char."""
    conn.settimeout(args.timeout)
    trace(args.debug, 3, "Issuing TCP challenge")
    if not _authenticate(conn, args.auth, key):
        say("Invalid response to challenge")
        return Response.FAIL
    trace(args.debug, 2, "TCP Exchange + Authentication done... ")
    trace(args.debug, 3, "Waiting for return value from XVM host")
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


def _authenticate(conn: socket.socket, auth: int, key: bytes) -> bool:
    """Our challenge first, then the host's (c-suite-spec §3.2); False on any failure."""
    handshake = AuthExchange.for_client(HashType(auth), key)
    received = 0
    try:
        while not handshake.done:
            if out := handshake.data_to_send():
                conn.sendall(out)
                continue
            try:
                data = conn.recv(handshake.bytes_needed)
            except TimeoutError:
                _read_failed(received, "select", os.strerror(errno.ETIMEDOUT))
                return False
            except OSError as exc:
                _read_failed(received, "reading challenge response", exc.strerror)
                return False
            if not data:
                _read_failed(received, "reading challenge response", os.strerror(errno.EPIPE))
                return False
            received += len(data)
            handshake.receive_data(data)
    except (OSError, AuthenticationError):
        return False
    return True


def _read_failed(received: int, what: str, reason: str | None) -> None:
    """C's diagnostic while it waits for the host's answer to our challenge.

    The C agent prints it without a newline, so "Invalid response to challenge" follows on
    the same line; kept byte for byte.
    """
    if received < CHALLENGE_SIZE:
        say_text(f"Error: select: {reason}\n" if what == "select" else f"Error {what}: {reason}")


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


def list_line(state: HostState) -> bytes:
    """C's ``printf("%-32s %s %s\\n", ...)``: padded in bytes, ``on`` only when running."""
    name = state.domain.encode().ljust(32)
    return b"%s %s %s\n" % (name, state.uuid.encode(), b"on" if state.running else b"off")
