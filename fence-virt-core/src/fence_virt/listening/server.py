"""The runner of a stream listener: accept connections, serve each in its own task.

What tcp and vsock (and any other ``SOCK_STREAM`` transport carrying fence_req) share. The
plugin opens, binds and listens its socket and says how a peer address becomes the
requester identity; the protocol of each connection is :class:`~fence_virt.listening.
StreamSessions`'.

Invariants:

* every connection is served in its own task: a slow backend or a client that stalls in the
  handshake delays nobody else, and a silent client is dropped at its request deadline;
* at most ``max_connections`` connections are served at once. At the bound the server stops
  accepting until one ends (the one connection accepted last waits for that slot), so
  further clients wait in the kernel's backlog rather than being refused (one warning per
  such episode); with C's 1-s request deadline a slot held by a silent client is free again
  within a second, and a connection's deadline starts when it is served;
* nothing a peer does (including an address the ``requester`` function rejects) escapes a
  connection's task: one log line, the connection closed, the server keeps accepting;
* :meth:`StreamServer.stop` closes the listening socket and ends every open connection;
  a request whose dispatcher call is under way is cancelled with it;
* with a ``state_file`` in its :class:`~fence_virt.listening.ReplaySettings`, the replay
  memory is read at :meth:`~StreamServer.start` and saved after every change and at
  :meth:`~StreamServer.stop` (:class:`~fence_virt.listening.ReplayStore`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from fence_virt.errors import LocalError
from fence_virt.listening.channel import SocketChannel
from fence_virt.listening.droplog import DropLog, SourceLog
from fence_virt.listening.history import RequestHistory
from fence_virt.listening.replay import ReplayGuard, ReplaySettings
from fence_virt.listening.replaystate import ReplayStore
from fence_virt.listening.stream import StreamPolicy, StreamSessions
from fence_virt.types import Dispatcher, DropKind

__all__ = ["ACCEPT_RETRY", "MAX_CONNECTIONS", "Requester", "StreamServer"]

#: connections served at once unless the listener's block says otherwise
MAX_CONNECTIONS = 128
#: seconds to wait after accept(2) failed for lack of resources (EMFILE, ENOBUFS, ...)
ACCEPT_RETRY = 0.1

#: the requester identity of a peer address as ``socket.accept`` returns it: numeric IP text
#: for ``(host, port, ...)``, the CID in decimal for a vsock ``(cid, port)``
Requester = Callable[[Any], str]


class StreamServer:
    """Accepts connections on a listening socket and serves each one's fence_req.

    Build and use it on the event loop that will run it (a listener's ``start``)::

        server = StreamServer(sock, policy, requester=lambda peer: peer[0], log=log)
        await server.start(dispatcher)
        ...
        await server.stop()
    """

    def __init__(
        self,
        sock: socket.socket,
        policy: StreamPolicy,
        *,
        requester: Requester,
        log: logging.Logger,
        max_connections: int = MAX_CONNECTIONS,
        history: RequestHistory | None = None,
        replay: ReplaySettings | None = None,
    ) -> None:
        """
        :param sock: a bound, listening stream socket; the server owns it from now on (and
            closes it in :meth:`stop`, or here if construction fails).
        :param policy: key, hash minimum, challenge algorithm and deadlines.
        :param requester: the peer address (as ``accept`` returns it) -> requester identity;
            an exception refuses the connection.
        :param log: the listener instance's logger.
        :param max_connections: connections open at once, at least 1.
        :param history: replaces the 10-second duplicate filter (tests).
        :param replay: the replay window and state file (default: the default window, in
            memory only; a listener plugin passes its ``replay_window`` and ``replay_state``).
        :raises fence_virt.errors.LocalError: ``max_connections`` below 1, or no running loop.
        """
        try:
            if max_connections < 1:
                raise LocalError(f"max_connections must be at least 1, not {max_connections}")
            self._loop = asyncio.get_running_loop()
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self._requester = requester
        self.log = log
        self.max_connections = max_connections
        drops = DropLog(log, schedule=self._loop.call_later, what="connection")
        replay = ReplaySettings() if replay is None else replay
        replays = ReplayGuard(replay.window, log=log)
        replay_log = SourceLog(drops, what="replayed requests", schedule=self._loop.call_later)
        self.sessions = StreamSessions(
            policy, log, drops=drops, history=history, replays=replays, replay_log=replay_log
        )
        self._store = (
            None if replay.state_file is None else ReplayStore(replays, replay.state_file, log)
        )
        self._slots = asyncio.Semaphore(max_connections)
        self._saturated = False
        self._accept_failing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._acceptor: asyncio.Task[None] | None = None
        self._dispatcher: Dispatcher | None = None
        self._stopped = False

    @property
    def open_connections(self) -> int:
        """Connections being served or waiting for a slot."""
        return len(self._tasks)

    @property
    def serving(self) -> bool:
        """Started and not yet stopped."""
        return self._dispatcher is not None and not self._stopped

    async def start(self, dispatcher: Dispatcher) -> None:
        """Begin accepting; requests go to ``dispatcher``.

        :raises fence_virt.errors.LocalError: started twice or after :meth:`stop`.
        """
        if self._dispatcher is not None or self._stopped:
            raise LocalError("stream server started twice")
        if self._store is not None:
            self._store.open()
        self._dispatcher = dispatcher
        self._acceptor = self._loop.create_task(self._accept_forever())

    async def stop(self) -> None:
        """Stop accepting, close the socket, end every open connection; safe to call twice."""
        self._stopped = True
        if self._acceptor is not None:
            self._acceptor.cancel()
            await asyncio.gather(self._acceptor, return_exceptions=True)
        self._sock.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sessions.replay_log.flush()
        if self._store is not None:
            await self._store.close()

    def connection_made(self, sock: socket.socket, address: Any) -> None:
        """Serve a connected stream socket accepted elsewhere, as if it came from the
        listening socket (it waits for a free slot like the others). For runners with
        connections of their own origin, and tests: e.g. one end of a ``socketpair`` with
        the peer address a vsock peer would have.

        :raises fence_virt.errors.LocalError: the server is not serving (``sock`` is closed).
        """
        if not self.serving:
            sock.close()
            raise LocalError("stream server is not serving")
        self._spawn(sock, address)

    async def _accept_forever(self) -> None:
        while True:
            if self._slots.locked():
                self._warn_saturated()
                async with self._slots:  # accept no more until a connection has ended
                    pass
            try:
                sock, address = await self._loop.sock_accept(self._sock)
            except OSError as exc:
                # logged once per episode: EMFILE would otherwise repeat every ACCEPT_RETRY
                if not self._accept_failing:
                    self._accept_failing = True
                    self.log.warning("accepting connections fails: %s", exc.strerror or exc)
                await asyncio.sleep(ACCEPT_RETRY)
                continue
            if self._accept_failing:
                self._accept_failing = False
                self.log.warning("accepting connections again")
            self._spawn(sock, address)

    def _warn_saturated(self) -> None:
        if not self._saturated:
            self._saturated = True
            self.log.warning(
                "%d connections open (max_connections): further clients wait", self.max_connections
            )

    def _spawn(self, sock: socket.socket, address: Any) -> None:
        task = self._loop.create_task(self._connection(sock, address))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, sock: socket.socket, address: Any) -> None:
        try:
            if self._slots.locked():
                self._warn_saturated()
            await self._slots.acquire()
        except BaseException:
            sock.close()
            raise
        try:
            await self._serve(sock, address)
        finally:
            self._slots.release()
            if not self._slots.locked():
                self._saturated = False

    async def _serve(self, sock: socket.socket, address: Any) -> None:
        assert self._dispatcher is not None
        try:
            sock.setblocking(False)
            requester = self._requester(address)
        except Exception as exc:  # noqa: BLE001 - whatever the peer's address did, refuse it
            sock.close()
            self.sessions.drops.drop(repr(address), f"unusable peer address: {exc}")
            self._dispatcher.dropped(repr(address), DropKind.MALFORMED, f"peer address: {exc}")
            return
        channel = SocketChannel(sock, self.sessions.policy.request_timeout)
        try:
            await self.sessions.handle(channel, requester, self._dispatcher)
        finally:
            channel.close()
