"""fence_virtd listener for ``fence_virt -S``: the guest connects to the host over
``AF_VSOCK`` and sends one signed request (c-suite-spec §1.4).

Modules: :mod:`.settings` (config block), :mod:`.sockets` (the listening socket, the
requester of a peer), :mod:`.listener` (the listener object), :mod:`.plugin` (the hooks).
Everything after the accept is core's stream server, :class:`fence_virt.listening.
StreamServer`, the same as for the tcp listener.
"""

from __future__ import annotations

from fence_virt_listener_vsock.plugin import VsockListenerPlugin

__all__ = ["VsockListenerPlugin"]
