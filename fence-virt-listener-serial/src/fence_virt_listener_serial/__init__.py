"""fence_virtd listener for the ``fence_virt`` agent on a guest's serial port
(c-suite-spec §1.5, §7).

Each running domain whose XML has a ``<serial type='unix'>`` device bound to a socket in the
configured directory is served on that socket, with the domain's UUID as the requester. The
implementation is shared with the vmchannel listener and lives in the libvirt library
(:class:`fence_virt_libvirt.GuestChannelListener`: discovery from lifecycle events) and core's
listener toolkit (:class:`fence_virt.listening.GuestSocketServer`: one task per socket); this
distribution is the entry point and its default mode.
"""

from __future__ import annotations

from fence_virt_listener_serial.plugin import SerialListenerPlugin

__all__ = ["SerialListenerPlugin"]
