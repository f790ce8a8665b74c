"""The plugin object core finds under the entry point ``fence_virt.listeners: serial``."""

from __future__ import annotations

from fence_virt_libvirt import ChannelMode, GuestChannelPlugin, channel_questions

__all__ = ["SerialListenerPlugin"]


class SerialListenerPlugin(GuestChannelPlugin):
    """Serial listener for the fence_virt agent: each domain's serial port, as a UNIX socket."""

    #: without a ``mode`` key: ``<serial>`` devices, as C's ``serial`` listener
    default_mode = ChannelMode.SERIAL
    #: ``fence_virtd -c``: C's serial page
    wizard_questions = channel_questions(ChannelMode.SERIAL)
