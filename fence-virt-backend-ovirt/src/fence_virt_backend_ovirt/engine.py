"""What the fencing logic needs from an oVirt engine, and what each VM status means.

:class:`Engine` is the adapter's interface: a handful of blocking calls, each bounded by the
configured HTTP timeout, each raising an :class:`EngineError` subclass. The one implementation
is :class:`fence_virt_backend_ovirt.sdk.SdkEngine` (the official SDK); the fencing logic in
:mod:`fence_virt_backend_ovirt.fencer` sees only this module.

Status semantics (ecosystem research §2.1; the engine's ``VmStatus`` values):

* ``down`` is off: no QEMU process holds the VM's disks.
* ``up``, ``paused``, ``powering_up``, ``powering_down``, ``migrating``,
  ``reboot_in_progress``, ``wait_for_launch``, ``saving_state``, ``restoring_state`` and
  ``suspended`` are on. ``suspended`` (hibernated) has no QEMU process, but resuming it brings
  the node back with the memory it had before the fence; only ``down`` is off, and an off
  request stops a suspended VM, which discards the saved memory.
* ``unknown``, ``not_responding``, ``image_locked``, ``unassigned`` -- and any value this
  module does not know -- mean the engine cannot vouch for the VM: a status request fails
  instead of guessing (fence_rhevm read everything but ``down`` as on, and a missing status
  as off).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from fence_virt.errors import BackendError

__all__ = [
    "Engine",
    "EngineError",
    "EngineRefused",
    "EngineUnreachable",
    "Power",
    "Vm",
    "VmAmbiguous",
    "power_of",
]


class Power(enum.Enum):
    """What a VM status means for fencing."""

    ON = "on"
    OFF = "off"
    #: the engine cannot vouch for the VM's state
    UNKNOWN = "unknown"


_ON = frozenset(
    {
        "up",
        "paused",
        "powering_up",
        "powering_down",
        "migrating",
        "reboot_in_progress",
        "wait_for_launch",
        "saving_state",
        "restoring_state",
        "suspended",
    }
)


def power_of(status: str) -> Power:
    """:class:`Power` of an engine ``VmStatus`` value (lower case, as in the XML)."""
    if status == "down":
        return Power.OFF
    if status in _ON:
        return Power.ON
    return Power.UNKNOWN


@dataclass(frozen=True)
class Vm:
    """One VM as the engine reported it."""

    #: the engine's VM id: a UUID, lower case
    id: str
    name: str
    #: the ``VmStatus`` value, lower case (``up``, ``down``, ``not_responding``, ...)
    status: str
    #: the id of the VM's cluster (``None`` if the engine did not say)
    cluster: str | None = None


class EngineError(BackendError):
    """The engine did not carry out a call; the message says why, for the log."""


class EngineUnreachable(EngineError):
    """No answer: connection refused, TLS failure, timeout."""


class EngineRefused(EngineError):
    """The engine answered with an error (authentication failed, permission, fault)."""


class VmAmbiguous(EngineError):
    """More than one VM has exactly the name asked for."""


class Engine(Protocol):
    """The calls the backend makes, each blocking for at most the HTTP timeout (SSO token
    requests included); safe to call from several threads at once."""

    def describe(self) -> str:
        """``https://HOST[:PORT]/ovirt-engine/api as USER``."""
        ...

    def check(self) -> None:
        """Log in if needed and read the API root.

        :raises EngineError: the engine is unreachable or refuses the credentials.
        """
        ...

    def cluster_id(self, name: str) -> str | None:
        """The id of the cluster called exactly ``name`` (case-sensitive), or ``None``.

        :raises EngineError: as :meth:`check`.
        """
        ...

    def find(self, name: str) -> Vm | None:
        """The VM called exactly ``name`` (case-sensitive) that this account can see, or
        ``None``.

        :raises VmAmbiguous: several VMs have that exact name.
        :raises EngineError: as :meth:`check`.
        """
        ...

    def get(self, vm_id: str) -> Vm | None:
        """The VM with id ``vm_id``, or ``None`` if this account cannot see one.

        :raises EngineError: as :meth:`check`.
        """
        ...

    def stop(self, vm_id: str) -> None:
        """Ask for a hard power-off (the REST ``stop`` action, never ``shutdown``).

        :raises EngineError: the engine refused or did not answer.
        """
        ...

    def start(self, vm_id: str) -> None:
        """Ask for a power-on (the REST ``start`` action).

        :raises EngineError: the engine refused or did not answer.
        """
        ...

    def vms(self, cluster_id: str | None) -> list[Vm]:
        """Every VM this account can see (only the cluster's when ``cluster_id`` is given).

        :raises EngineError: as :meth:`check`.
        """
        ...

    def close(self) -> None:
        """Revoke the token (best effort) and release every connection."""
        ...
