"""The guest's serial port for ``fence_virt -D``: checked, opened, locked, set raw and hung up
as C's ``open_port`` and ``hangup`` do (client/serial.c, c-suite-spec §4.7).

``serial_params`` (``-P``, default ``115200,8N1``) is ``SPEED,DPS``: a speed of 2400, 9600,
19200, 38400, 57600 or 115200 (empty: 9600) and, after the first comma, three characters,
each of which sets the data bits (``5``-``8``), the parity (``n``, ``e``, ``o``, either case)
or the stop bits (``1``, ``2``), in any order; more characters are ignored, fewer are an
error, no comma or nothing after it means 8 data bits, no parity, one stop bit. As in C only
the first 31 characters count.

The port is opened read-write, exclusive (``O_EXCL``; Linux honours it for block devices
only), without becoming our controlling terminal (``O_NOCTTY``, which C lacks) and without
waiting for a carrier (``O_NONBLOCK``: all I/O goes through ``select``). A POSIX write lock
on the whole device (``F_SETLK``, as C) keeps a second agent -- ours or C's -- off the line
while one talks: the second fails at once. Then termios is set the way C sets it: every
flag zero but ``speed | CLOCAL | CRTSCTS | CREAD | bits``, so no echo, no line editing and
no translation; both queues are flushed, which drops whatever an earlier run left unread
(the trailing result of a host list, say); finally the modem lines drop for 0.3 s.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import termios
import time

from fence_virt.agents.console import say, warn

#: the speeds C's ``char_to_speed`` knows; an empty speed is 9600
SPEEDS = {
    "": termios.B9600,
    "2400": termios.B2400,
    "9600": termios.B9600,
    "19200": termios.B19200,
    "38400": termios.B38400,
    "57600": termios.B57600,
    "115200": termios.B115200,
}
#: what each character of ``DPS`` sets: (the bits it replaces, its value)
_SIZE = termios.CSIZE
_PARITY = termios.PARENB | termios.PARODD
_STOP = termios.CSTOPB
_BITS = {
    "5": (_SIZE, termios.CS5),
    "6": (_SIZE, termios.CS6),
    "7": (_SIZE, termios.CS7),
    "8": (_SIZE, termios.CS8),
    "n": (_PARITY, 0),
    "e": (_PARITY, termios.PARENB),
    "o": (_PARITY, termios.PARENB | termios.PARODD),
    "1": (_STOP, 0),
    "2": (_STOP, termios.CSTOPB),
}
#: C copies ``serial_params`` into ``char speed[32]`` with strncpy
_PARAMS_MAX = 31
_DPS_SIZE = 3
#: c-suite-spec §4.7: hangup(fd, 300000) -- modem lines down for 0.3 s
HANGUP_DELAY = 0.3
#: the lines hangup drops and raises again (DTR, CTS, RTS, DSR, CD)
_MODEM_LINES = (
    termios.TIOCM_DTR | termios.TIOCM_CTS | termios.TIOCM_RTS | termios.TIOCM_DSR | termios.TIOCM_CD
)
#: TIOCMGET fails so on a line without modem control (a PTY, a virtio console)
_NO_MODEM = (errno.ENOTTY, errno.EINVAL)
_OPEN_FLAGS = os.O_RDWR | os.O_EXCL | os.O_NOCTTY | os.O_NONBLOCK


class LineSettings:
    """The termios speed constant and the character-size, parity and stop-bit flags."""

    __slots__ = ("cflag", "speed")

    def __init__(self, speed: int, cflag: int) -> None:
        self.speed = speed
        self.cflag = cflag


def line_settings(params: str) -> LineSettings | None:
    """``serial_params`` as C reads it; None when C's ``open_port`` would refuse it.

    A character that is none of ``5678nNeEoO12`` prints C's ``Fail: X`` first (on stdout,
    as the 4.12.1 agent); the caller prints the ``open_port`` line.
    """
    speed_text, comma, dps = params[:_PARAMS_MAX].partition(",")
    speed = SPEEDS.get(speed_text)
    if speed is None:
        return None
    cflag = termios.CS8
    if not comma or not dps:
        return LineSettings(speed, cflag)
    if len(dps) < _DPS_SIZE:
        return None
    for char in dps[:_DPS_SIZE]:
        bits = _BITS.get(char.lower())
        if bits is None:
            say(f"Fail: {char}")
            return None
        mask, value = bits
        cflag = cflag & ~mask | value
    return LineSettings(speed, cflag)


def check_params(params: str) -> bool:
    """``line_settings`` for ``validate-all``: False after C's lines for a refused value."""
    if line_settings(params) is None:
        warn(f"open_port: {os.strerror(errno.EINVAL)}")
        return False
    return True


def open_port(path: str, params: str) -> int | None:
    """The port at ``path``, open, locked, raw and flushed; None after C's lines (stderr)
    saying why not (``open: ...``, ``Failed to lock serial port: ...``, ``tcsetattr: ...``,
    then ``open_port: ...`` with the same reason, where C always says "Invalid argument")."""
    settings = line_settings(params)
    if settings is None:
        warn(f"open_port: {os.strerror(errno.EINVAL)}")
        return None
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        _failed("open", exc.errno)
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        _failed("Failed to lock serial port", exc.errno)
        return None
    try:
        _set_raw(fd, settings)
    except termios.error as exc:
        os.close(fd)
        _failed("tcsetattr", exc.args[0])
        return None
    return fd


def _set_raw(fd: int, settings: LineSettings) -> None:
    """C's termios: all zero but speed, CLOCAL, CRTSCTS, CREAD and the DPS bits; flushed."""
    cflag = termios.CLOCAL | termios.CRTSCTS | termios.CREAD | settings.cflag
    cc: list[int] = [0] * termios.NCCS
    attributes: list[int | list[int]] = [0, 0, cflag, 0, settings.speed, settings.speed, cc]
    termios.tcsetattr(fd, termios.TCSANOW, attributes)
    with contextlib.suppress(termios.error):  # C ignores tcflush's result too
        termios.tcflush(fd, termios.TCIOFLUSH)


def _failed(what: str, number: int | None) -> None:
    reason = os.strerror(number or errno.EIO)
    warn(f"{what}: {reason}")
    warn(f"open_port: {reason}")


def hangup(fd: int, delay: float = HANGUP_DELAY) -> None:
    """Drop DTR, RTS (and what else TIOCMSET takes) for ``delay`` seconds, then raise them.

    On a line without modem control (a PTY, a virtio console) there is nothing to hang up:
    we go on silently where C printed ``ioctl1: Inappropriate ioctl for device`` on every
    run. Any other failure prints C's ``ioctlN: reason`` and skips the rest, as C.
    """
    try:
        bits = _get_lines(fd)
    except OSError as exc:
        if exc.errno not in _NO_MODEM:
            warn(f"ioctl1: {exc.strerror}")
        return
    try:
        _set_lines(fd, bits & ~_MODEM_LINES)
    except OSError as exc:
        warn(f"ioctl2: {exc.strerror}")
        return
    time.sleep(delay)
    try:
        _set_lines(fd, bits | _MODEM_LINES)
    except OSError as exc:
        warn(f"ioctl3: {exc.strerror}")


def _get_lines(fd: int) -> int:
    raw = fcntl.ioctl(fd, termios.TIOCMGET, bytes(4))
    return int.from_bytes(raw, sys.byteorder)


def _set_lines(fd: int, bits: int) -> None:
    fcntl.ioctl(fd, termios.TIOCMSET, (bits & 0xFFFFFFFF).to_bytes(4, sys.byteorder))
