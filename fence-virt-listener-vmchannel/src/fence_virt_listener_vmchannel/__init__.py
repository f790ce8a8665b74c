"""fence_virtd listener for the ``fence_virt`` agent over a vmchannel (c-suite-spec §1.5, §7).

The serial listener with ``mode = "vmchannel"`` as its default: each running domain whose
XML has a ``<channel type='unix'>`` device (a guestfwd to 10.0.2.179:1229, or a virtio-serial
port) bound to a socket in the configured directory is served on that socket, with the
domain's UUID as the requester. The implementation is the one the serial listener uses, in
the libvirt library (:class:`fence_virt_libvirt.GuestChannelListener`) and core's listener
toolkit (:class:`fence_virt.listening.GuestSocketServer`); a C configuration that runs
``listener = "serial";`` with ``mode = "vmchannel";`` needs the serial distribution.
"""

from __future__ import annotations

from fence_virt_listener_vmchannel.plugin import VmchannelListenerPlugin

__all__ = ["VmchannelListenerPlugin"]
