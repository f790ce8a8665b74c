"""fence_virtd listener for ``fence_virt -T``: the guest connects to the host over TCP and
sends one signed request (c-suite-spec §1.3).

Modules: :mod:`.settings` (config block), :mod:`.sockets` (the listening socket, the
requester of a peer), :mod:`.listener` (the listener object), :mod:`.plugin` (the hooks).
Everything after the accept -- the request and its deadline, verification, duplicate
filter, replay memory, challenge/response, the answer, the bound on open connections, the
drop log -- is core's stream server, :class:`fence_virt.listening.StreamServer`.
"""

from __future__ import annotations

from fence_virt_listener_tcp.plugin import TcpListenerPlugin

__all__ = ["TcpListenerPlugin"]
