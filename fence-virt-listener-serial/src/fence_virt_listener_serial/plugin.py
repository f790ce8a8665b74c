"""The plugin object core finds under the entry point ``fence_virt.listeners: serial``."""

from __future__ import annotations

from fence_virt_libvirt import ChannelMode, GuestChannelPlugin

__all__ = ["SerialListenerPlugin"]


class SerialListenerPlugin(GuestChannelPlugin):
    """Serial listener for the fence_virt agent: each domain's serial port, as a UNIX socket."""

    #: without a ``mode`` key: ``<serial>`` devices, as C's ``serial`` listener
    default_mode = ChannelMode.SERIAL
