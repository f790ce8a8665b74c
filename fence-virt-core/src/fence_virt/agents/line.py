"""fence_virt's serial transports: a serial device (``-D``) and a vmchannel (``-A``),
c-suite-spec §1.5, §2.7, §4.7.

Both carry one exchange (:func:`exchange`) over one file descriptor: the guest writes a
74-byte serial_req_t (no key, no signature: the host trusts the socket behind the line) and
reads the answer, a 5-byte serial_resp_t found by its magic in whatever else the line
carries, or for a host list that header, the 130-byte records up to the all-zero one (the
trailing serial_resp_t is never waited for, as in C). Only the way to the line differs:

* ``-D DEVICE``: the guest's serial port (:mod:`.device`: opened exclusive and locked, raw
  termios from ``-P``, flushed, modem lines dropped for 0.3 s);
* ``-A ADDRESS`` (default 10.0.2.179) and ``-p PORT``: a TCP connection within 3 s to the
  address a libvirt guestfwd channel forwards to the host's UNIX socket.

Results, as C's ``serial_fence_virt`` returns them: the response byte (0-255; C's serial
response is unsigned, so 128 stays 128), 0 after a whole host list, -1 when the line could
not be opened or connected, or no answer came within ``-t`` seconds (EOF, timeout, no
magic) -- the runner prints ``Unknown response (-1)`` and exits 255, as C. Deliberately
unlike C: a magic with no response byte after it (the line closed) is -1, where C reported
the uninitialised byte (0, success); a host list cut short prints C's ``Timed out!`` or
``Bad read!`` and is a failure (1), where C exited 0; a request that cannot be written
within 3 s prints C's ``Failed to send request`` (C printed nothing when the write failed)
and the answer is still awaited, as C does.

Only a run that sends imports this module (see :mod:`fence_virt.agents.virt`); it loads
neither the key and hashing code nor, for ``-D``, :mod:`socket`.
"""

from __future__ import annotations

import os
import select
import time

from fence_virt.agents.console import list_line, say, say_raw, warn
from fence_virt.agents.runner import NO_RESULT, new_seqno
from fence_virt.protocol.enums import Response
from fence_virt.protocol.serial import SerialRequest, SerialResponseScanner

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Callable
    from socket import socket

    from fence_virt.agents.options import AgentArgs
    from fence_virt.protocol.serial import SerialResponse

    #: ``connect(address, port)``: a connected stream socket, or OSError
    Connect = Callable[[str, int], socket]

#: c-suite-spec §4.7: the request is written with a 3-second timeout
WRITE_TIMEOUT = 3.0
_READ_SIZE = 4096


def fence_device(args: AgentArgs) -> int:
    """One request over the serial device ``args.serial_device`` (``-D``)."""
    from fence_virt.agents import device  # noqa: PLC0415 - termios and fcntl for -D only

    fd = device.open_port(args.serial_device or "", args.serial_params)
    if fd is None:
        return NO_RESULT
    try:
        device.hangup(fd)
        return exchange(fd, args)
    finally:
        os.close(fd)


def fence_channel(args: AgentArgs, connect: Connect | None = None) -> int:
    """One request over TCP to ``args.channel_address:args.port`` (``-A``, ``-p``).

    ``connect`` defaults to :func:`fence_virt.agents.connect.connect_tcp` (3 s).
    """
    from fence_virt.agents.connect import connect_tcp, reason  # noqa: PLC0415 - loads socket

    try:
        sock = (connect or connect_tcp)(args.channel_address, args.port)
    except OSError as exc:
        # C: perror("vmchannel connect") with a stale errno ("Bad file descriptor" for a
        # refused connection); the reason here is the real one
        warn(f"vmchannel connect: {reason(exc)}")
        say(f"Failed to connect to {args.channel_address}:{args.port}")
        return NO_RESULT
    with sock:
        sock.setblocking(False)
        return exchange(sock.fileno(), args)


def exchange(fd: int, args: AgentArgs) -> int:
    """Write the request (3 s), then read the answer within ``args.timeout`` seconds.

    ``fd`` is a connected line in non-blocking mode (a tty or a stream socket); the result
    is as the module docstring says.
    """
    request = SerialRequest(request=int(args.op), domain=args.domain or "", seqno=new_seqno())
    if not _write_all(fd, request.encode(), time.monotonic() + WRITE_TIMEOUT):
        say("Failed to send request")
    deadline = time.monotonic() + args.timeout
    scanner = SerialResponseScanner()
    while (found := scanner.response) is None:
        try:
            data = _read(fd, deadline)
        except TimeoutError:
            return NO_RESULT
        if not data:
            return NO_RESULT
        scanner.feed(data)
    if found.response != Response.HOSTLIST:
        return found.response
    return _read_hostlist(fd, found, scanner.unused_data, args.timeout)


def _read_hostlist(fd: int, header: SerialResponse, rest: bytes, timeout: float) -> int:
    """Print each record until the all-zero one; each read may take ``timeout`` seconds."""
    from fence_virt.protocol.hostlist import HostListDecoder  # noqa: PLC0415 - list only

    decoder = HostListDecoder(serial=True)
    data = header.encode() + rest
    while True:
        for state in decoder.feed(data):
            say_raw(list_line(state))
        if decoder.done:
            return 0
        try:
            data = _read(fd, time.monotonic() + timeout)
        except TimeoutError:
            say("Timed out!")
            return Response.FAIL
        if not data:
            say("Bad read!")
            return Response.FAIL


def _read(fd: int, deadline: float) -> bytes:
    """What the line has (b"" at its end or on an error); TimeoutError at ``deadline``."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError
        try:
            return os.read(fd, _READ_SIZE)
        except BlockingIOError:
            continue
        except OSError:
            # C: any read error is the end; a PTY whose other end closed gives EIO
            return b""


def _write_all(fd: int, data: bytes, deadline: float) -> bool:
    """Write all of ``data`` by ``deadline``; False if the line refused or stayed full."""
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
            return False
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue
        except OSError:
            return False
    return True
