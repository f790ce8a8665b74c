"""Paths and the embedded default configuration of fence_virtd."""

from __future__ import annotations

__all__ = [
    "BACKEND_PREFERENCE",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_PID_FILE",
    "EMBEDDED_DEFAULT_CONFIG",
    "EMBEDDED_DEFAULT_SOURCE",
    "LISTENER_PREFERENCE",
]

#: as in C (SYSCONFDIR/fence_virt.conf)
DEFAULT_CONFIG_FILE = "/etc/fence_virt.conf"
#: as in C (/var/run/<program>.pid)
DEFAULT_PID_FILE = "/var/run/fence_virtd.pid"

#: Order in which the daemon picks a listener when the config names none: multicast serves
#: the standard fence_xvm agent; tcp and the channel listeners need guest-specific set-up.
LISTENER_PREFERENCE = ("multicast", "tcp", "serial", "vmchannel", "vsock")
#: Order for backends: cpg first because on a host cluster it routes each request to the host
#: that runs the VM (libvirt alone answers only for local VMs); oVirt only runs when configured.
BACKEND_PREFERENCE = ("cpg", "libvirt", "ovirt")

#: shown in messages instead of a file name when the embedded default is in use
EMBEDDED_DEFAULT_SOURCE = "<embedded default>"

#: Used when the config file does not exist. It names no plugins, so the daemon picks them by
#: the preference orders above. Its libvirt URI is the libvirt *test driver*: a daemon started
#: without configuration can be tried safely but fences nothing real (it says so at start-up).
EMBEDDED_DEFAULT_CONFIG = """\
# fence_virtd embedded default: used only when the config file does not exist.
backends {
\tlibvirt {
\t\turi = "test:///default";
\t}
}
"""
