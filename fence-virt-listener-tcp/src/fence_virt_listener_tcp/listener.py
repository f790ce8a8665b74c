"""The tcp listener object: core's stream listener over a TCP socket.

Every connection is served by :class:`fence_virt.listening.StreamListener` (request within
its deadline, verified, duplicates and replays dropped, challenge/response, the answer
through the dispatcher); this module only opens the socket and names the requester: the
peer's numeric IP address (c-suite-spec §1.3, §7.3).
"""

from __future__ import annotations

from fence_virt.listening import StreamListener
from fence_virt_listener_tcp.settings import TcpSettings
from fence_virt_listener_tcp.sockets import open_listening_socket, peer_ip

__all__ = ["TcpListener"]


class TcpListener(StreamListener):
    """:class:`fence_virt.Listener` for ``fence_virt -T`` clients."""

    def __init__(self, settings: TcpSettings, key: bytes) -> None:
        super().__init__(
            settings,
            key,
            open_socket=lambda: open_listening_socket(settings),
            requester=peer_ip,
        )
