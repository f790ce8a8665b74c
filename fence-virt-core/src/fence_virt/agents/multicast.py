"""fence_xvm's transport (c-suite-spec §1.2, §4.6): multicast out, TCP connect-back in.

Per attempt, one freshly signed request per local address of the family goes to the group
(TTL 2, sent out of that address's interface), then we wait ``retrans`` tenths of a second
for a host to connect to our TCP port (the multicast port). The first connection wins.
``_socket`` is used instead of :mod:`socket`, whose import builds four IntEnums (~5 ms on
every Pacemaker monitor).
"""

from __future__ import annotations

import _socket
import time

from fence_virt.agents.addresses import local_addresses
from fence_virt.agents.console import say, trace
from fence_virt.agents.options import FAMILY_AUTO, FAMILY_IPV6
from fence_virt.agents.session import NO_RESULT, exchange

TYPE_CHECKING = False
if TYPE_CHECKING:
    from fence_virt.agents.addresses import LocalAddress
    from fence_virt.agents.options import AgentArgs

_TTL = 2
_BACKLOG = 10
_RESP_FAIL = 1
_USEC_PER_SEC = 1_000_000


def _family(args: AgentArgs) -> int:
    return _socket.AF_INET6 if args.family == FAMILY_IPV6 else _socket.AF_INET


def check_args(args: AgentArgs) -> None:
    """The group must be an address literal of the chosen family (no DNS)."""
    if args.family == FAMILY_AUTO or args.mcast_address is None:
        return
    try:
        _socket.inet_pton(_family(args), args.mcast_address)
    except OSError:
        args.error(f"Invalid multicast address: '{args.mcast_address}'")


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
    family = _family(args)
    try:
        sources = local_addresses(family)
    except OSError:
        say("Error building IP address list")
        return _RESP_FAIL
    if not sources:
        kind = "IPv6" if family == _socket.AF_INET6 else "IPv4"
        say(f"No {kind} address on this machine to send the request from")
        return _RESP_FAIL
    attempts, wait = schedule(args.timeout, args.retrans)
    listener, attempts = _listen(family, args.port, attempts, wait)
    if listener is None:
        return NO_RESULT
    try:
        conn = _wait_for_host(listener, args, key, sources, attempts, wait)
    except OSError as exc:
        say(f"Operation failed: {exc.strerror}")
        return NO_RESULT
    finally:
        listener.close()
    if conn is None:
        say("Timed out waiting for response")
        say(_hint(args))
        return _RESP_FAIL
    try:
        return exchange(conn, args, key)
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


def _listen(
    family: int, port: int, attempts: int, wait: float
) -> tuple[_socket.socket | None, int]:
    """The TCP listener on the wildcard address; a busy port is retried (same budget)."""
    while True:
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            sock.bind(("::" if family == _socket.AF_INET6 else "0.0.0.0", port))  # noqa: S104
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
    listener: _socket.socket,
    args: AgentArgs,
    key: bytes,
    sources: list[LocalAddress],
    attempts: int,
    wait: float,
) -> _socket.socket | None:
    """Send, wait, repeat; the accepted connection, or None when every attempt timed out."""
    # one seqno (microseconds of the clock) for the whole run, as C: hosts use it against
    # retransmissions
    seqno = time.time_ns() // 1000 % _USEC_PER_SEC
    listener.settimeout(wait)
    for _attempt in range(attempts):
        _send_requests(args, key, sources, seqno)
        trace(args.debug, 3, "Waiting for connection from XVM host daemon.")
        try:
            fd, _peer = listener._accept()  # type: ignore[attr-defined]
        except TimeoutError:
            continue
        return _socket.socket(listener.family, _socket.SOCK_STREAM, 0, fd)
    return None


def _send_requests(args: AgentArgs, key: bytes, sources: list[LocalAddress], seqno: int) -> None:
    """One signed datagram per source address; send errors are only traced, as in C."""
    for source in sources:
        datagram = _request(args, key, source, seqno)
        sock = _socket.socket(source.family, _socket.SOCK_DGRAM)
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


def _use_source(sock: _socket.socket, source: LocalAddress) -> None:
    if source.family == _socket.AF_INET:
        sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_MULTICAST_IF, source.packed)
        sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_MULTICAST_TTL, _TTL)
    else:
        sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_MULTICAST_IF, source.ifindex)
        sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_MULTICAST_HOPS, _TTL)


def _request(args: AgentArgs, key: bytes, source: LocalAddress, seqno: int) -> bytes:
    """The signed 176-byte fence_req_t naming ``source`` as the connect-back address."""
    from ipaddress import ip_address  # noqa: PLC0415

    from fence_virt.protocol import (  # noqa: PLC0415
        FenceRequest,
        HashType,
        RequestFlag,
        sign_request,
    )

    request = FenceRequest.build(
        args.op,
        args.domain or "",
        hashtype=HashType(args.hash),
        seqno=seqno,
        flags=RequestFlag.UUID if args.use_uuid else RequestFlag(0),
        address=ip_address(source.packed),
        port=args.port,
    )
    return sign_request(request, key).encode()
