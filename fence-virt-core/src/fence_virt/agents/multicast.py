"""fence_xvm's transport (c-suite-spec §1.2, §4.6): multicast out, TCP connect-back in.

Per attempt, one freshly signed request per local address of the family goes to the group
(TTL 2, sent out of that address's interface), then we wait ``retrans`` tenths of a second
for a host to connect to our TCP port (the multicast port). The first connection wins.
Only a run that sends imports this module (see :mod:`fence_virt.agents.xvm`).
"""

from __future__ import annotations

import socket
import time

from fence_virt.agents.addresses import local_addresses
from fence_virt.agents.console import say, trace
from fence_virt.agents.options import FAMILY_IPV6
from fence_virt.agents.runner import NO_RESULT, new_seqno
from fence_virt.agents.session import exchange, signed_request
from fence_virt.protocol.enums import Response

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.agents.addresses import LocalAddress
    from fence_virt.agents.options import AgentArgs

_TTL = 2
_BACKLOG = 10


def schedule(timeout: int, retrans: int) -> tuple[int, float]:
    """``(attempts, seconds per attempt)``: timeout*10/retrans waits of retrans/10 s.

    C computed 0 attempts when ``timeout * 10 < retrans`` and then looped ~2**32 times; we
    make one attempt that lasts the timeout.
    """
    tenths = timeout * 10
    if tenths < retrans:
        return 1, float(timeout)
    return tenths // retrans, retrans / 10


def fence(args: AgentArgs, key: bytes) -> int:
    """Send the request and run the exchange with the first host that connects back."""
    family = socket.AF_INET6 if args.family == FAMILY_IPV6 else socket.AF_INET
    try:
        sources = local_addresses(family)
    except OSError:
        say("Error building IP address list")
        return Response.FAIL
    if not sources:
        kind = "IPv6" if family == socket.AF_INET6 else "IPv4"
        say(f"No {kind} address on this machine to send the request from")
        return Response.FAIL
    attempts, wait = schedule(args.timeout, args.retrans)
    listener, attempts = _listen(family, args.port, attempts, wait)
    if listener is None:
        return NO_RESULT
    sent: list[bytes] = []
    try:
        conn = _wait_for_host(listener, args, key, sources, attempts, wait, sent)
    except OSError as exc:
        say(f"Operation failed: {exc.strerror}")
        return NO_RESULT
    finally:
        listener.close()
    if conn is None:
        say("Timed out waiting for response")
        say(_hint(args))
        return Response.FAIL
    try:
        return exchange(conn, args, key, sent=sent)
    finally:
        conn.close()


def _hint(args: AgentArgs) -> str:
    """The one line that names the two usual causes of a timeout."""
    hint = (
        f"Hint: no host connected back: inbound TCP port {args.port} to this machine must be open"
    )
    if args.auth or args.hash:
        return f"{hint}, and the key file {args.key_file} must match fence_virtd's"
    return f'{hint}, and fence_virtd must accept unsigned requests (hash = "none")'


def _listen(family: int, port: int, attempts: int, wait: float) -> tuple[socket.socket | None, int]:
    """The TCP listener on the wildcard address; a busy port is retried (same budget)."""
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))  # noqa: S104
            sock.listen(_BACKLOG)
        except OSError as exc:
            sock.close()
            say(f"Failed to listen: {exc.strerror}")
            time.sleep(wait)
            attempts -= 1
            if attempts <= 0:
                return None, attempts
            continue
        return sock, attempts


def _wait_for_host(
    listener: socket.socket,
    args: AgentArgs,
    key: bytes,
    sources: list[LocalAddress],
    attempts: int,
    wait: float,
    sent: list[bytes],
) -> socket.socket | None:
    """Send, wait, repeat; the accepted connection, or None when every attempt timed out.

    Every datagram sent is appended to ``sent`` (a v2 host proves one of them).
    """
    # one seqno for the whole run, as C: hosts use it against retransmissions
    seqno = new_seqno()
    listener.settimeout(wait)
    for _attempt in range(attempts):
        sent += _send_requests(args, key, sources, seqno)
        trace(args.debug, 3, "Waiting for connection from XVM host daemon.")
        try:
            conn, _peer = listener.accept()
        except TimeoutError:
            continue
        return conn
    return None


def _send_requests(
    args: AgentArgs, key: bytes, sources: list[LocalAddress], seqno: int
) -> list[bytes]:
    """One signed datagram per source address (returned); send errors are only traced, as
    in C."""
    datagrams = []
    for source in sources:
        datagram = signed_request(args, key, seqno, source)
        datagrams.append(datagram)
        sock = socket.socket(source.family, socket.SOCK_DGRAM)
        try:
            _use_source(sock, source)
            trace(args.debug, 3, f"Sending to {args.mcast_address} via {source.text}")
            sock.sendto(datagram, (args.mcast_address, args.port))
        except OSError as exc:
            trace(
                args.debug,
                3,
                f"Unable to send packet to {args.mcast_address} via {source.text}: {exc.strerror}",
            )
        finally:
            sock.close()
    return datagrams


def _use_source(sock: socket.socket, source: LocalAddress) -> None:
    if source.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, source.packed)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, _TTL)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, source.ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, _TTL)
