"""Public types shared by core and plugins: what a listener or backend receives and returns.

A plugin imports these from :mod:`fence_virt`; they are part of the plugin contract, like the
hook names in :mod:`fence_virt.hookspecs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fence_virt.protocol import HostState, Operation, Response

__all__ = ["Availability", "Dispatcher", "Listener", "Target"]


@dataclass(frozen=True, slots=True)
class Availability:
    """A plugin's answer to "can you run on this host, and if not, why?"."""

    usable: bool
    #: one line for ``--list-plugins`` and the start-up log, e.g. "corosync is not running"
    reason: str

    @classmethod
    def yes(cls, reason: str) -> Availability:
        return cls(usable=True, reason=reason)

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(usable=False, reason=reason)


@dataclass(frozen=True, slots=True)
class Target:
    """The VM a request names, and who asked for it."""

    #: VM name or UUID exactly as the request carried it
    domain: str
    #: the client set the "domain is a UUID" flag (RF_UUID); backends may also detect UUIDs
    by_uuid: bool
    #: requester identity the listener vouches for: IP text, vsock CID, or the guest's UUID
    requester: str
    #: the client's sequence number, for logs and for backends that forward requests
    seqno: int


class Dispatcher(Protocol):
    """What core gives a listener: the one way to reach the backend.

    Both methods are coroutines and safe to call concurrently; core checks permissions
    (static maps), serializes operations on the same VM and runs the backend off the event loop.
    """

    async def fence(self, operation: Operation, target: Target) -> Response:
        """Carry out null/off/on/reboot/status/devstatus for ``target``; never raises for a
        backend failure (that is ``Response.FAIL``)."""
        ...

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        """Return the VMs ``requester`` may see, in backend order; raise
        :class:`fence_virt.errors.BackendError` if the backend cannot list."""
        ...


@runtime_checkable
class Listener(Protocol):
    """A running request source built by ``fence_virt_listener_create``."""

    def describe(self) -> str:
        """One line for logs, e.g. ``multicast 225.0.0.12:1229 on lo (ipv4)``."""
        ...

    async def start(self, dispatcher: Dispatcher) -> None:
        """Open sockets and begin serving in background tasks; return once ready.

        Raise :class:`fence_virt.errors.UserError` (or a subclass) when the listener cannot
        start (port in use, key file missing): the daemon reports it and exits non-zero.
        """
        ...

    async def stop(self) -> None:
        """Stop accepting requests, cancel in-flight work and release every socket."""
        ...
