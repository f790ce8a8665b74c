"""A listener over one listening stream socket: what the tcp and vsock plugins share.

C's tcp.c and vsock.c differ only in the socket they open and in how they name the peer
(c-suite-spec §1.3, §1.4, §7.3); every connection is then served alike. So a stream
listener plugin supplies those two things and its settings block; :class:`StreamListener`
owns the :class:`~fence_virt.listening.StreamServer` between ``start`` and ``stop``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Protocol

from fence_virt.errors import LocalError
from fence_virt.listening.replay import ReplaySettings
from fence_virt.listening.server import Requester, StreamServer
from fence_virt.listening.stream import StreamPolicy
from fence_virt.types import Dispatcher

__all__ = ["LISTENER_LOGGER_PREFIX", "StreamListener", "StreamListenerSettings"]

#: loggers are named per instance: ``fence_virt.listener.<instance name>``
LISTENER_LOGGER_PREFIX = "fence_virt.listener."


class StreamListenerSettings(Protocol):
    """What :class:`StreamListener` reads from a listener instance's validated block."""

    @property
    def name(self) -> str:
        """The instance name (the block's name in ``listeners { ... }``)."""
        ...

    @property
    def max_connections(self) -> int:
        """Connections served at once, at least 1."""
        ...

    @property
    def replay(self) -> ReplaySettings:
        """The replay window (seconds) and state file."""
        ...

    def describe(self) -> str:
        """Where it listens, for logs and ``--check`` (e.g. ``tcp 127.0.0.1:1229``)."""
        ...

    def policy(self, key: bytes) -> StreamPolicy:
        """Key, hash minimum, challenge algorithm and deadlines for every connection."""
        ...


class StreamListener:
    """:class:`fence_virt.Listener` serving the connections of one listening socket.

    ``open_socket`` is called once per :meth:`start` and returns a bound, listening socket
    (its errors -- :class:`~fence_virt.errors.LocalError` for an address in use -- propagate).
    ``requester`` names the peer of each accepted connection (the peer address as ``accept``
    returns it -> the requester identity that static maps and logs use).
    """

    def __init__(
        self,
        settings: StreamListenerSettings,
        key: bytes,
        *,
        open_socket: Callable[[], socket.socket],
        requester: Requester,
    ) -> None:
        self._settings = settings
        self._key = key
        self._open_socket = open_socket
        self._requester = requester
        self.log = logging.getLogger(LISTENER_LOGGER_PREFIX + settings.name)
        #: the stream server while started (None before and after)
        self.server: StreamServer | None = None

    def describe(self) -> str:
        return self._settings.describe()

    async def start(self, dispatcher: Dispatcher) -> None:
        """Bind and serve; :raises LocalError: started twice, or the socket cannot be opened."""
        if self.server is not None:
            raise LocalError(f"listener {self._settings.name} ({self.describe()}) started twice")
        settings = self._settings
        self.server = StreamServer(
            self._open_socket(),
            settings.policy(self._key),
            requester=self._requester,
            log=self.log,
            max_connections=settings.max_connections,
            replay=settings.replay,
        )
        await self.server.start(dispatcher)
        self.log.info("listening on %s", self.describe())

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
