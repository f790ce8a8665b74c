"""Output of the agents: stdout, stderr, debug lines and syslog, as the C agent writes them.

Text is written as bytes with ``surrogateescape`` so that names taken from argv or stdin
come back out byte for byte, like C's ``printf("%s")``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from typing import BinaryIO

    from fence_virt.protocol.hostlist import HostState

# syslog priorities (RFC 5424 numbers), so the syslog module loads only when used
LOG_ERR = 3
LOG_NOTICE = 5


def _write(stream: BinaryIO, text: str) -> None:
    stream.write(text.encode("utf-8", "surrogateescape"))


def say(text: str) -> None:
    """A line on stdout: results, and (as in C 4.12.1) the agent's error messages."""
    _write(sys.stdout.buffer, text + "\n")


def say_text(text: str) -> None:
    """Text on stdout as it is (usage, help, metadata: they carry their own newlines)."""
    _write(sys.stdout.buffer, text)


def say_raw(data: bytes) -> None:
    """Bytes on stdout, unchanged (host-list lines padded like C's ``%-32s``)."""
    sys.stdout.buffer.write(data)


def list_line(state: HostState) -> bytes:
    """One host-list line as C prints it, ``printf("%-32s %s %s\\n", ...)``: padded in bytes,
    ``on`` only when running (c-suite-spec §2.6)."""
    name = state.domain.encode().ljust(32)
    return b"%s %s %s\n" % (name, state.uuid.encode(), b"on" if state.running else b"off")


def warn(text: str) -> None:
    """A line on stderr: getopt complaints and stdin parse warnings."""
    sys.stdout.buffer.flush()
    _write(sys.stderr.buffer, text + "\n")
    sys.stderr.buffer.flush()


def trace(threshold: int, level: int, text: str) -> None:
    """A debug line on stdout when the ``-d`` level ``threshold`` reaches ``level``."""
    if threshold >= level:
        say(text)


def log(ident: str, priority: int, text: str) -> None:
    """One syslog message (facility daemon, with the pid), as the C agent sends them."""
    import syslog  # noqa: PLC0415

    syslog.openlog(ident, syslog.LOG_PID | syslog.LOG_NDELAY, syslog.LOG_DAEMON)
    syslog.syslog(priority, text)
    syslog.closelog()


def flush() -> None:
    """Push buffered stdout out; a closed pipe (reader gone) is not our failure to report."""
    try:
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # keep the interpreter's own flush at exit from failing on the same pipe
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())


class Traces:
    """The ``-d`` lines one C transport prints around the exchange (levels 3, 3, 2, 3)."""

    __slots__ = ("challenging", "done", "responding", "waiting")

    def __init__(self, challenging: str, responding: str, done: str, waiting: str) -> None:
        self.challenging = challenging
        self.responding = responding
        self.done = done
        self.waiting = waiting


#: client/mcast.c (fence_xvm's connect-back)
MULTICAST_TRACES = Traces(
    "Issuing TCP challenge",
    "Responding to TCP challenge",
    "TCP Exchange + Authentication done... ",
    "Waiting for return value from XVM host",
)
#: client/tcp.c (fence_virt -T)
TCP_TRACES = Traces(
    "Issuing TCP challenge",
    "Responding to TCP challenge",
    "TCP Exchange + Authentication done... ",
    "Waiting for return value from fence_virtd host",
)
#: client/vsock.c (fence_virt -S)
VSOCK_TRACES = Traces(
    "Issuing challenge",
    "Responding to challenge",
    "vsock Exchange + Authentication done... ",
    "Waiting for return value from fence_virtd host",
)


def print_hostlist(stream: bytes) -> int:
    """Print a complete host-list stream already received (0 when it ends properly)."""
    from fence_virt.protocol.enums import Response  # noqa: PLC0415
    from fence_virt.protocol.hostlist import HostListDecoder  # noqa: PLC0415

    decoder = HostListDecoder()
    for state in decoder.feed(stream):
        say_raw(list_line(state))
    if not decoder.done:
        say("Bad read!")
        return Response.FAIL
    return 0
