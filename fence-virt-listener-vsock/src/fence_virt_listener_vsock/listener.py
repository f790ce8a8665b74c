"""The vsock listener object: core's stream listener over an ``AF_VSOCK`` socket.

Every connection is served by :class:`fence_virt.listening.StreamListener`, exactly as for
tcp; this module only opens the ``AF_VSOCK`` socket and names the requester: the peer's
CID in decimal (c-suite-spec §1.4, §7.3).
"""

from __future__ import annotations

from fence_virt.listening import StreamListener
from fence_virt_listener_vsock.settings import VsockSettings
from fence_virt_listener_vsock.sockets import open_listening_socket, peer_cid

__all__ = ["VsockListener"]


class VsockListener(StreamListener):
    """:class:`fence_virt.Listener` for ``fence_virt -S`` clients."""

    def __init__(self, settings: VsockSettings, key: bytes) -> None:
        super().__init__(
            settings,
            key,
            open_socket=lambda: open_listening_socket(settings),
            requester=peer_cid,
        )
