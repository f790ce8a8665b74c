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
from fence_virt.protocol import HashType
from fence_virt.protocol.v2 import ProtocolMode
from fence_virt.types import Dispatcher

__all__ = ["LISTENER_LOGGER_PREFIX", "StreamListener", "StreamListenerSettings", "stream_policy"]

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

    @property
    def hash(self) -> HashType:
        """The weakest request hash accepted (C's ``hash`` minimum)."""
        ...

    @property
    def auth(self) -> HashType:
        """The challenge/response algorithm."""
        ...

    @property
    def request_timeout(self) -> float:
        """Seconds the client has to send its request."""
        ...

    @property
    def io_timeout(self) -> float:
        """Seconds each later read or write may take."""
        ...

    @property
    def protocol(self) -> ProtocolMode:
        """C mode, v2, or both."""
        ...

    @property
    def v2_window(self) -> float:
        """Seconds a v2 request's timestamp may be off."""
        ...


def stream_policy(settings: StreamListenerSettings, key: bytes) -> StreamPolicy:
    """What every connection of the instance ``settings`` describes must satisfy, with the
    ``key`` read from its key file."""
    return StreamPolicy(
        key,
        settings.hash,
        settings.auth,
        settings.request_timeout,
        settings.io_timeout,
        protocol=settings.protocol,
        v2_window=settings.v2_window,
    )


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
            stream_policy(settings, self._key),
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
