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

    uri: tuple[str, ...]
    host_id: Annotated[int, in_range(1, 2**31 - 1)] = 0
    url: str = "amqp://127.0.0.1:5672/"
    password_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    exchange: str = DEFAULT_EXCHANGE
    request_timeout: Annotated[float, POSITIVE] = 30.0
    reboot_timeout: Annotated[float, POSITIVE] = 30.0
    refresh_interval: Annotated[float, POSITIVE] = 5.0
    presumed_dead_after: Annotated[float, POSITIVE] = 20.0
    connect_timeout: Annotated[float, POSITIVE] = 10.0
    fenced_check: Path | None = None
    fenced_check_timeout: Annotated[float, POSITIVE] = 20.0
