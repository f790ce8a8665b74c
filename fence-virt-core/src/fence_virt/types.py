"""Public types shared by core and plugins: what a listener or backend receives and returns.

A plugin imports these from :mod:`fence_virt`; they are part of the plugin contract, like the
hook names in :mod:`fence_virt.hookspecs`.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fence_virt.protocol import HostState, Operation, Response

__all__ = ["Availability", "Dispatcher", "Listener", "Target", "domain_uuid"]

#: length of the hyphenated UUID text C compares against (``8-4-4-4-12`` hex digits)
_CANONICAL_UUID_LENGTH = 36


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


def domain_uuid(domain: str, *, by_uuid: bool = False) -> str | None:
    """The UUID a request's domain field names, as lower-case hyphenated text; else ``None``.

    The one rule for "is this a UUID?" (static maps, backends, listeners): the canonical
    36-character form (any case) is always a UUID, as in C's map and libvirt lookups; when the
    request carries the RF_UUID flag (``by_uuid``), any form :class:`uuid.UUID` reads is one too
    (32 hex digits, braces, ``urn:uuid:``). Everything else is a VM name.

    :param domain: the domain field as decoded from the request.
    :param by_uuid: the request's RF_UUID flag (c-suite-spec §2.3).
    :returns: e.g. ``"6695eb01-f6a4-8304-79aa-97f2502e193f"``, or ``None`` for a name.
    """
    if len(domain) != _CANONICAL_UUID_LENGTH and not by_uuid:
        return None
    try:
        parsed = str(uuidlib.UUID(domain))
    except ValueError:
        return None
    if by_uuid or parsed == domain.lower():
        return parsed
    return None


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

    @property
    def uuid(self) -> str | None:
        """The UUID ``domain`` names (lower-case, hyphenated) or ``None`` for a name; see
        :func:`domain_uuid`."""
        return domain_uuid(self.domain, by_uuid=self.by_uuid)


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
