"""libvirt for fence-virt plugins (a library: no entry points).

* :class:`Hypervisor`: one URI's shared connection, reopened once when it turns out dead.
* :func:`locate`, :func:`list_domains`, :func:`list_all`, :func:`domain_xml`: find a VM by
  name or UUID over several URIs, list VMs as :class:`fence_virt.protocol.HostState` rows,
  read a domain's XML.
* :func:`running_addresses`: the IP addresses of running domains (DHCP leases, ARP).
* :class:`Fencer`: verified off/on/reboot/status/devstatus/hostlist for a
  :class:`fence_virt.Target`, answering :class:`fence_virt.protocol.Response`.
* :class:`LifecycleWatch`: domain lifecycle events on the asyncio loop (``libvirtaio``), with
  reconnect after a libvirtd restart.
* :func:`socket_paths`, :func:`in_directory`, :class:`GuestSocketWatch`: the UNIX sockets of
  running domains' serial ports or channels (C's discovery rule), kept current from events.
* :class:`GuestChannelListener`, :class:`GuestChannelPlugin` and the settings: the serial
  and vmchannel listeners, shared by their two plugins.

Everything but :class:`LifecycleWatch` blocks: call it from worker threads.
"""

from __future__ import annotations

from fence_virt_libvirt.addresses import ADDRESS_SOURCES, running_addresses
from fence_virt_libvirt.channels import (
    ChannelMode,
    GuestChannelListener,
    GuestChannelPlugin,
    GuestChannelSection,
    GuestChannelSettings,
    channel_availability,
    create_channel_listener,
    load_channel_settings,
)
from fence_virt_libvirt.domains import (
    DomainState,
    Located,
    current_state,
    domain_xml,
    list_all,
    list_domains,
    locate,
    state_name,
    wait_for_state,
)
from fence_virt_libvirt.eventloop import bind_running_loop
from fence_virt_libvirt.events import DomainEvent, LifecycleEvent, LifecycleWatch
from fence_virt_libvirt.guests import DeviceKind, GuestSocket, in_directory, socket_paths
from fence_virt_libvirt.guestwatch import GuestSocketWatch
from fence_virt_libvirt.hypervisor import (
    Hypervisor,
    HypervisorUnreachable,
    LibvirtCallFailed,
    describe,
    probe,
    quiet_libvirt,
)
from fence_virt_libvirt.operations import Fencer

__all__ = [
    "ADDRESS_SOURCES",
    "ChannelMode",
    "DeviceKind",
    "DomainEvent",
    "DomainState",
    "Fencer",
    "GuestChannelListener",
    "GuestChannelPlugin",
    "GuestChannelSection",
    "GuestChannelSettings",
    "GuestSocket",
    "GuestSocketWatch",
    "Hypervisor",
    "HypervisorUnreachable",
    "LibvirtCallFailed",
    "LifecycleEvent",
    "LifecycleWatch",
    "Located",
    "bind_running_loop",
    "channel_availability",
    "create_channel_listener",
    "current_state",
    "describe",
    "domain_xml",
    "in_directory",
    "list_all",
    "list_domains",
    "load_channel_settings",
    "locate",
    "probe",
    "quiet_libvirt",
    "running_addresses",
    "socket_paths",
    "state_name",
    "wait_for_state",
]
