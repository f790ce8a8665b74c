"""A TCP connection to an IP literal within C's 3 seconds, shared by ``fence_virt -T`` (the
tcp listener, :mod:`.stream`) and ``fence_virt -A`` (a vmchannel, :mod:`.line`).

Only a run that connects imports this module: it loads :mod:`socket`.
"""

from __future__ import annotations

import errno
import os
import socket

from fence_virt.agents.addresses import ip_family

#: C's ipv4_connect/ipv6_connect timeout (seconds); also bounds our vsock connect
CONNECT_TIMEOUT = 3.0


def connect_tcp(address: str | int, port: int) -> socket.socket:
    """A TCP connection to an IP literal (no name lookup), within :data:`CONNECT_TIMEOUT`.

    Keepalive is on, as C's ``connect_nb`` sets it. Raises OSError (TimeoutError when the
    host does not answer in time).
    """
    family = ip_family(str(address))
    if family is None:
        # the agent's argument check refuses such text before any run gets here
        raise OSError(errno.EINVAL, f"not an IP address: {address}")
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


def reason(exc: OSError) -> str:
    """strerror text; a socket timeout (no errno) is C's ETIMEDOUT."""
    if exc.errno is None and isinstance(exc, TimeoutError):
        return os.strerror(errno.ETIMEDOUT)
    return exc.strerror or str(exc)
