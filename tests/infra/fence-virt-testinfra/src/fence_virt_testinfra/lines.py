"""The host's end of a guest's serial line, for tests of the ``fence_virt -D`` and ``-A``
agents (ours and C's) without a daemon: a PTY made by the test (``os.openpty``; no agent
ever opens a real serial device) or a TCP listener on 127.0.0.1 (inside a test namespace
when one is given), served by :class:`LineHost` on threads.

A host answers each serial request it reads (framed by core's
:class:`~fence_virt.listening.SerialRequestReader`) with what its ``reply`` returns: bytes
to write (:data:`HANG_UP`: close the line), or None (stay silent). :func:`toolkit_reply`
answers the way fence_virtd's serial listeners do (core's
:func:`~fence_virt.listening.answer_serial`) in front of a dispatcher::

    with pty_host(lambda request: SerialResponse(0).encode()) as (host, tty):
        run fence_virt -D tty -o status -H vm1          # Status: ON
    assert host.requests[0].domain == "vm1"

Every thread is joined and every descriptor closed when the context ends.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fence_virt.listening import SerialRequestReader, answer_serial
from fence_virt.protocol import SerialRequest
from fence_virt.types import Dispatcher
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.setns import in_netns

__all__ = ["HANG_UP", "LineHost", "Pty", "Reply", "pty_host", "tcp_host", "toolkit_reply"]

#: a reply that closes the line instead of answering
HANG_UP = b""
#: the bytes to write for a request (:data:`HANG_UP`: close the line), or None: silence
Reply = Callable[[SerialRequest], bytes | None]
_POLL = 0.05


def toolkit_reply(dispatcher: Dispatcher, requester: str) -> Reply:
    """Answer as fence_virtd's serial listeners do, for the guest ``requester``."""

    def reply(request: SerialRequest) -> bytes:
        return asyncio.run(answer_serial(request, requester, dispatcher))

    return reply


class LineHost:
    """fence_virtd's end of guest lines, each served on a thread of its own.

    ``hang_up_after``: seconds after its first answer at which the host closes the line.
    ``requests`` records every request read, in order.
    """

    def __init__(self, reply: Reply, *, hang_up_after: float | None = None) -> None:
        self.reply = reply
        self.hang_up_after = hang_up_after
        self.requests: list[SerialRequest] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def serve(self, fd: int, *, close: bool) -> None:
        """Serve ``fd`` in the background; close it at the end if ``close``."""
        thread = threading.Thread(target=self._run, args=(fd, close), daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop serving, join the threads; raise what a thread raised."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        if self.error is not None:
            raise self.error

    def _run(self, fd: int, close: bool) -> None:
        try:
            self._serve(fd)
        except Exception as exc:  # noqa: BLE001 - handed to the test by stop()
            self.error = exc
        finally:
            if close:
                os.close(fd)

    def _serve(self, fd: int) -> None:
        reader = SerialRequestReader()
        while not self._stop.is_set():
            if not select.select([fd], [], [], _POLL)[0]:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                return  # a PTY's master reads EIO once no guest end is open
            if not data:
                return
            for event in reader.feed(data):
                if isinstance(event, SerialRequest) and not self._answer(fd, event):
                    return

    def _answer(self, fd: int, request: SerialRequest) -> bool:
        """Write the reply; False when the line is to close now."""
        self.requests.append(request)
        answer = self.reply(request)
        if answer == HANG_UP:
            return False
        if answer is not None:
            os.write(fd, answer)
        if self.hang_up_after is not None:
            time.sleep(self.hang_up_after)
            return False
        return True


class Pty:
    """A PTY made for one test: ``path`` is the guest's end, the host reads ``master``. The
    test keeps a descriptor of the guest's end open, so the line outlives each agent run."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = Path(os.ttyname(self.slave))

    def give_master(self) -> int:
        """The host's end, for a host that closes it itself; no longer closed here."""
        master, self.master = self.master, -1
        return master

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


@contextmanager
def pty_host(
    reply: Reply, *, hang_up_after: float | None = None
) -> Iterator[tuple[LineHost, Path]]:
    """A fresh PTY whose host end ``reply`` serves: (the host, the guest's tty path)."""
    host = LineHost(reply, hang_up_after=hang_up_after)
    pty = Pty()
    try:
        host.serve(pty.give_master(), close=True)
        yield host, pty.path
    finally:
        try:
            host.stop()
        finally:
            pty.close()


@contextmanager
def tcp_host(
    reply: Reply, *, ns: NetNS | None = None, hang_up_after: float | None = None
) -> Iterator[tuple[LineHost, int]]:
    """A listener on 127.0.0.1 (inside ``ns`` if given) whose connections ``reply`` serves,
    each on a thread: (the host, the port)."""
    host = LineHost(reply, hang_up_after=hang_up_after)
    listener = _listen(ns)
    listener.settimeout(_POLL)
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            host.serve(conn.detach(), close=True)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield host, listener.getsockname()[1]
    finally:
        done.set()
        thread.join(10)
        listener.close()
        host.stop()


def _listen(ns: NetNS | None) -> socket.socket:
    """A listening socket on 127.0.0.1 (an ephemeral port), made inside ``ns`` if given."""

    def make() -> socket.socket:
        return socket.create_server(("127.0.0.1", 0))

    return make() if ns is None else in_netns(ns, make)
