"""fence_virtd listener for the C ``fence_xvm`` agent: signed UDP multicast requests, answered
over a TCP connection back to the guest (c-suite-spec §1.2).

Modules: :mod:`.settings` (config block), :mod:`.keys` (key file), :mod:`.datagram` (checks
before connecting back), :mod:`.session` (per-request protocol, transport-free),
:mod:`.sockets` and :mod:`.listener` (the asyncio runner), :mod:`.plugin` (the hooks).
"""

from __future__ import annotations

from fence_virt_listener_multicast.plugin import MulticastListenerPlugin

__all__ = ["MulticastListenerPlugin"]
