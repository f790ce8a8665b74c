"""The plugin object core finds under the entry point ``fence_virt.listeners: vmchannel``."""

from __future__ import annotations

from fence_virt_libvirt import ChannelMode, GuestChannelPlugin, channel_questions

__all__ = ["VmchannelListenerPlugin"]


class VmchannelListenerPlugin(GuestChannelPlugin):
    """Vmchannel listener for the fence_virt agent: each domain's channel, as a UNIX socket."""

    #: without a ``mode`` key: ``<channel>`` devices (C: the serial listener's vmchannel mode)
    default_mode = ChannelMode.VMCHANNEL
    #: ``fence_virtd -c``: C's serial page
    wizard_questions = channel_questions(ChannelMode.VMCHANNEL)
