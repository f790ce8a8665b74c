"""libvirt for fence-virt plugins (a library: no entry points).

* :class:`Hypervisor`: one URI's shared connection, reopened once when it turns out dead.
* :func:`locate`, :func:`list_domains`, :func:`list_all`, :func:`domain_xml`: find every
  copy of a VM (:class:`Copies`) by name or UUID over several URIs, list VMs as
  :class:`fence_virt.protocol.HostState` rows, read a domain's XML.
* :func:`running_addresses`: the IP addresses of running domains (DHCP leases, ARP).
* :class:`Fencer`: verified off/on/reboot/status/devstatus/hostlist for a
  :class:`fence_virt.Target`, answering :class:`fence_virt.protocol.Response`, honouring the
  target's deadline; off answered when a local guest's QEMU process has exited
  (``qemu_pid_dirs``), a reboot answered at off or once running (:class:`RebootAnswer`).
* :func:`qemu_pid_dir`, :func:`find_qemu`, :class:`QemuProcess`, :func:`outliving`: the
  QEMU process of a local domain, tied to it and watched until it exits, and what in a
  domain may outlive that process (``docs/fencing-point.md``).
* :class:`LifecycleWatch`: domain lifecycle events on the asyncio loop (``libvirtaio``), with
  reconnect after a libvirtd restart.
* :func:`connect_hypervisors`: connect a host's URIs (at least one must open);
  :class:`LocalVms`: a distributed backend's local side (the :class:`Fencer` of its URIs, and
  an async ``publish`` callback called every refresh interval and after lifecycle events,
  bursts coalesced); :class:`HostClusterBackend`: the rest such a backend shares (the four
  operations to one ``_request``, this host's list, monitor, stop order, tasks and waiters).
* :func:`socket_paths`, :func:`in_directory`, :class:`GuestSocketWatch`: the UNIX sockets of
  running domains' serial ports or channels (C's discovery rule), kept current from events.
* :class:`GuestChannelListener`, :class:`GuestChannelPlugin` and the settings: the serial
  and vmchannel listeners, shared by their two plugins.

Everything but :class:`LifecycleWatch`, :class:`LocalVms` and :class:`HostClusterBackend`
blocks: call it from worker threads.
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
    channel_questions,
    create_channel_listener,
    load_channel_settings,
)
from fence_virt_libvirt.domains import (
    AmbiguousName,
    Copies,
    DomainState,
    Located,
    current_state,
    domain_xml,
    list_all,
    list_domains,
    locate,
    running_copies,
    state_name,
    wait_for_state,
)
from fence_virt_libvirt.eventloop import bind_running_loop
from fence_virt_libvirt.events import DomainEvent, LifecycleEvent, LifecycleWatch
from fence_virt_libvirt.fencepoint import outliving
from fence_virt_libvirt.guests import DeviceKind, GuestSocket, in_directory, socket_paths
from fence_virt_libvirt.guestwatch import GuestSocketWatch
from fence_virt_libvirt.hostcluster import HostClusterBackend
from fence_virt_libvirt.hypervisor import (
    DEFAULT_KEEPALIVE,
    Hypervisor,
    HypervisorUnreachable,
    LibvirtCallFailed,
    describe,
    probe,
    quiet_libvirt,
)
from fence_virt_libvirt.localvms import LocalVms, connect_hypervisors
from fence_virt_libvirt.operations import DeadlinePassed, Fencer, RebootAnswer
from fence_virt_libvirt.qemuproc import QemuProcess, find_qemu, qemu_pid_dir

__all__ = [
    "ADDRESS_SOURCES",
    "DEFAULT_KEEPALIVE",
    "AmbiguousName",
    "ChannelMode",
    "Copies",
    "DeadlinePassed",
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
    "HostClusterBackend",
    "Hypervisor",
    "HypervisorUnreachable",
    "LibvirtCallFailed",
    "LifecycleEvent",
    "LifecycleWatch",
    "LocalVms",
    "Located",
    "QemuProcess",
    "RebootAnswer",
    "bind_running_loop",
    "channel_availability",
    "channel_questions",
    "connect_hypervisors",
    "create_channel_listener",
    "current_state",
    "describe",
    "domain_xml",
    "find_qemu",
    "in_directory",
    "list_all",
    "list_domains",
    "load_channel_settings",
    "locate",
    "outliving",
    "probe",
    "qemu_pid_dir",
    "quiet_libvirt",
    "running_addresses",
    "running_copies",
    "socket_paths",
    "state_name",
    "wait_for_state",
]
