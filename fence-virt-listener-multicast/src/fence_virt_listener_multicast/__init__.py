"""fence_virtd listener for the C ``fence_xvm`` agent: signed UDP multicast requests, answered
over a TCP connection back to the guest (c-suite-spec §1.2).

Modules: :mod:`.settings` (config block), :mod:`.datagram` (checks before connecting back),
:mod:`.sockets` (group socket, connect-back) and :mod:`.listener` (the asyncio runner),
:mod:`.plugin` (the hooks). The key file, the per-request session after the connect-back,
the duplicate filter, the replay guard and the drop log come from core's listener toolkit,
:mod:`fence_virt.listening`.
"""

from __future__ import annotations

from fence_virt_listener_multicast.plugin import MulticastListenerPlugin

__all__ = ["MulticastListenerPlugin"]
