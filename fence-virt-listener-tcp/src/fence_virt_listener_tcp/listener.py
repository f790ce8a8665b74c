"""The tcp listener object: its socket and core's stream server, nothing else.

Every connection is served by :class:`fence_virt.listening.StreamServer` (request within
its deadline, verified, duplicates and replays dropped, challenge/response, the answer
through the dispatcher); this module only opens the socket and names the requester: the
peer's numeric IP address (c-suite-spec §1.3, §7.3).
"""

from __future__ import annotations

import logging

from fence_virt import Dispatcher
from fence_virt.errors import LocalError
from fence_virt.listening import StreamServer
from fence_virt_listener_tcp.settings import TcpSettings
from fence_virt_listener_tcp.sockets import open_listening_socket, peer_ip

__all__ = ["LOGGER_PREFIX", "TcpListener"]

#: loggers are named per instance: ``fence_virt.listener.<instance name>``
LOGGER_PREFIX = "fence_virt.listener."


class TcpListener:
    """:class:`fence_virt.Listener` for ``fence_virt -T`` clients."""

    def __init__(self, settings: TcpSettings, key: bytes) -> None:
        self._settings = settings
        self._key = key
        self.log = logging.getLogger(LOGGER_PREFIX + settings.name)
        #: the stream server while started (None before and after)
        self.server: StreamServer | None = None

    def describe(self) -> str:
        return self._settings.describe()

    async def start(self, dispatcher: Dispatcher) -> None:
        if self.server is not None:
            raise LocalError("tcp listener started twice")
        settings = self._settings
        self.server = StreamServer(
            open_listening_socket(settings),
            settings.policy(self._key),
            requester=peer_ip,
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
