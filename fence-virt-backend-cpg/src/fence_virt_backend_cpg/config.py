"""The ``backends { cpg { ... } }`` block.

Keys::

    uri = "qemu:///system";        # required; may repeat: this host's hypervisors
    name_mode = "name";            # as C: "name" (default) or "uuid"
    group = "fence-agents";        # the CPG group; C from fence-agents uses this name
    request_timeout = "60";        # seconds a request waits for the owner's answer
    reboot_timeout = "30";         # seconds to wait for "really off" / "really running"
    refresh_interval = "10";       # seconds between re-publications of the local VMs
    join_timeout = "10";           # seconds start-up waits for corosync to confirm the join
    fenced_check = "/usr/local/sbin/host-is-fenced";   # see the README: dead-host rule
    fenced_check_timeout = "20";   # seconds the check may run

Without ``fenced_check`` a VM whose host left the group is never reported fenced.

``name_mode`` may also stand in the ``fence_virtd`` block, its place before fence-virt 0.1.4;
C's cpg backend reads it there first and lets the ``cpg`` block override it (cpg-virt.c,
c-suite-spec §5.4). :func:`load_settings` does the same.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fence_virt.config import POSITIVE, ConfigSection, ConfigTree
from fence_virt.errors import ConfigError

__all__ = ["DEFAULT_GROUP", "CpgSettings", "NameMode", "load_settings"]

#: PACKAGE_NAME of fence-agents builds of the C suite (Debian's); the archived standalone
#: fence-virt package used "fence-virt", and the two never see each other (c-suite-spec §6.2)
DEFAULT_GROUP = "fence-agents"


class NameMode(enum.Enum):
    """How requests name VMs (C's ``name_mode``)."""

    NAME = "name"
    UUID = "uuid"


@dataclass(frozen=True)
class CpgSettings:
    """The validated block."""

    #: libvirt URI of this host's hypervisor; repeatable (``uri`` lines), required
    uri: tuple[str, ...]
    #: how requests name VMs, as C: ``name`` or ``uuid``
    name_mode: NameMode = NameMode.NAME
    #: the CPG group every host joins (the C suite from fence-agents uses this one)
    group: str = DEFAULT_GROUP
    #: seconds a request waits for the owning host's answer
    request_timeout: Annotated[float, POSITIVE] = 60.0
    #: seconds to wait for a VM to be really off, and really running again
    reboot_timeout: Annotated[float, POSITIVE] = 30.0
    #: seconds between re-publications of this host's VMs
    refresh_interval: Annotated[float, POSITIVE] = 10.0
    #: seconds start-up waits for corosync to confirm the join
    join_timeout: Annotated[float, POSITIVE] = 10.0
    #: command run as ``fenced_check NODEID LEFT_AT`` that exits 0 only if that host was fenced
    #: since it left; unset: VMs of a departed host always fail
    fenced_check: Path | None = None
    #: seconds the ``fenced_check`` command may run
    fenced_check_timeout: Annotated[float, POSITIVE] = 20.0


def load_settings(section: ConfigSection, config: ConfigTree) -> CpgSettings:
    """The ``cpg`` block, with ``name_mode`` from ``fence_virtd`` when the block has none.

    As C (cpg-virt.c): ``fence_virtd/@name_mode`` is read first, ``backends/cpg/@name_mode``
    overrides it; both case-insensitive. C ignores an unsupported value in either place
    (its multicast listener refuses one in ``fence_virtd``); here it is an error.

    :raises ConfigError: a bad value in the block, or a ``fence_virtd/@name_mode`` other
        than ``name`` or ``uuid`` (at its file:line).
    """
    settings = section.load(CpgSettings)
    if section.node is not None and section.node.entry("name_mode") is not None:
        return settings
    daemon = config.node("fence_virtd")
    legacy = daemon.entry("name_mode") if daemon is not None else None
    if daemon is None or legacy is None:
        return settings
    modes = {mode.value: mode for mode in NameMode}
    mode = modes.get(legacy.value.strip().casefold())
    if mode is None:
        raise ConfigError(
            f"fence_virtd: name_mode {legacy.value!r}: expected name or uuid",
            path=daemon.source or config.source,
            line=legacy.line or None,
        )
    return dataclasses.replace(settings, name_mode=mode)
