"""The ``backends { amqp { ... } }`` block.

Keys::

    uri = "qemu:///system";        # required; may repeat: this host's hypervisors
    host_id = "1";                 # required: this host's number, unique in the host cluster
    url = "amqps://fence@mq.example:5671/guests-a";  # broker, user and vhost (no password)
    password_file = "/etc/fence_virt/amqp.password"; # the user's password (first line)
    tls_ca = "/etc/fence_virt/mq-ca.pem";            # amqps: CA that signed the broker
    tls_cert = "/etc/fence_virt/host.pem";           # amqps: client certificate (optional)
    tls_key = "/etc/fence_virt/host.key";            # amqps: its key (optional)
    exchange = "fence-virt";       # one exchange per guest cluster
    request_timeout = "30";        # seconds a request waits for the owner's answer
    reboot_timeout = "30";         # seconds to wait for "really off" / "really running"
    refresh_interval = "5";        # seconds between announcements of the local VMs
    presumed_dead_after = "20";    # seconds without an announcement before a host departs
    connect_timeout = "10";        # seconds start-up waits for the broker
    fenced_check = "/usr/local/sbin/host-is-fenced";  # see the README: dead-host rule
    fenced_check_timeout = "20";   # seconds the check may run

Without ``fenced_check`` a VM whose host stopped announcing is never reported fenced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fence_virt.config import POSITIVE, in_range

__all__ = ["DEFAULT_EXCHANGE", "AmqpSettings"]

DEFAULT_EXCHANGE = "fence-virt"


@dataclass(frozen=True)
class AmqpSettings:
    """The validated block (times in seconds)."""

    #: libvirt URI of this host's hypervisor; repeatable, required
    uri: tuple[str, ...]
    #: this host's number, unique among the hosts of the guest cluster; required
    host_id: Annotated[int, in_range(1, 2**31 - 1)] = 0
    #: the broker, ``amqp://`` or ``amqps://USER@HOST:PORT/VHOST`` (no password here)
    url: str = "amqp://127.0.0.1:5672/"
    #: a file whose first line is the broker password (mode set to 0600)
    password_file: Path | None = None
    #: PEM file of the CA that signed the broker's certificate; unset: the system's CAs
    tls_ca: Path | None = None
    #: client certificate (PEM), if the broker requires one
    tls_cert: Path | None = None
    #: the client certificate's key (PEM)
    tls_key: Path | None = None
    #: the topic exchange of this guest cluster (one per guest cluster)
    exchange: str = DEFAULT_EXCHANGE
    #: seconds a request waits for the owning host's answer (also the request's TTL)
    request_timeout: Annotated[float, POSITIVE] = 30.0
    #: seconds to wait for a VM to be really off, and really running again
    reboot_timeout: Annotated[float, POSITIVE] = 30.0
    #: seconds between announcements of this host's VMs
    refresh_interval: Annotated[float, POSITIVE] = 5.0
    #: seconds of silence after which a host has departed (at least 3 x refresh_interval)
    presumed_dead_after: Annotated[float, POSITIVE] = 20.0
    #: seconds start-up waits for the broker
    connect_timeout: Annotated[float, POSITIVE] = 10.0
    #: command run as ``fenced_check HOST LAST_HEARD`` that exits 0 only if that host was
    #: fenced since; unset: VMs of a departed host always fail
    fenced_check: Path | None = None
    #: seconds the ``fenced_check`` command may run
    fenced_check_timeout: Annotated[float, POSITIVE] = 20.0
