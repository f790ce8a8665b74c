"""Public types shared by core and plugins: what a listener or backend receives and returns.

A plugin imports these from :mod:`fence_virt`; they are part of the plugin contract, like the
hook names in :mod:`fence_virt.hookspecs`.

Flow of one request: a :class:`Listener` decodes and authenticates it, builds a
:class:`Target` and awaits its :class:`Dispatcher`; core checks permissions, serializes
operations on the VM and calls the :class:`Backend`; when the answer is known, every
``fence_virt_request_finished`` observer receives a :class:`FinishedRequest`.
"""

from __future__ import annotations

import enum
import uuid as uuidlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

from fence_virt.errors import AuthenticationError
from fence_virt.protocol import HostState, Operation, Response

__all__ = [
    "Availability",
    "Backend",
    "CheckContext",
    "Diagnosable",
    "Dispatcher",
    "DropKind",
    "DroppedRequest",
    "Finding",
    "FinishedRequest",
    "Listener",
    "MaybeAwaitable",
    "Severity",
    "Silenceable",
    "Target",
    "WizardQuestion",
    "domain_uuid",
]

_T = TypeVar("_T")

#: a backend method's result: a plain value from a ``def`` method (core runs it in a worker
#: thread), or an awaitable from an ``async def`` method (core awaits it on the event loop)
MaybeAwaitable: TypeAlias = _T | Awaitable[_T]

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
    #: when the answer is due, in :func:`time.monotonic` seconds (core sets it from
    #: ``fence_virtd { deadline }`` before calling the backend; ``None``: no deadline). Past
    #: it the client has been answered FAIL: a backend must not *start* a state change then
    #: (one already under way may finish). Not part of equality.
    deadline: float | None = field(default=None, compare=False)

    @property
    def uuid(self) -> str | None:
        """The UUID ``domain`` names (lower-case, hyphenated) or ``None`` for a name; see
        :func:`domain_uuid`."""
        return domain_uuid(self.domain, by_uuid=self.by_uuid)


class DropKind(enum.Enum):
    """Why a listener refused an input before it became a request (metrics label values)."""

    #: wrongly signed, or the challenge/response failed: a key or ``auth`` mismatch, or an
    #: attacker
    AUTHENTICATION = "authentication"
    #: not a request: wrong size or magic, bad fields, a peer that went silent
    MALFORMED = "malformed"
    #: a replayed copy of a request already served, or the same request again too soon
    REPLAY = "replay"
    #: the listener is serving as many requests as it may
    OVERLOAD = "overload"

    @classmethod
    def of(cls, error: BaseException) -> DropKind:
        """``AUTHENTICATION`` for an :class:`~fence_virt.errors.AuthenticationError`, else
        ``MALFORMED`` (the kind of a :class:`~fence_virt.errors.RemoteError`)."""
        return cls.AUTHENTICATION if isinstance(error, AuthenticationError) else cls.MALFORMED


@dataclass(frozen=True, slots=True)
class DroppedRequest:
    """One input a listener refused, as ``fence_virt_request_dropped`` observers receive it."""

    #: the listener instance that refused it
    listener: str
    #: who sent it, as the listener saw it (address, CID, guest UUID); not vouched for
    requester: str
    kind: DropKind
    #: the log line's reason, e.g. "wrong signature (sha256)"
    reason: str
    #: seconds since the epoch (``time.time()``)
    when: float


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

    async def should_answer(self, operation: Operation, target: Target) -> bool:
        """Whether this host answers a request for ``target`` at all; a multicast listener
        asks before it connects back, and stays silent on False (another host of the group
        may hold the VM). False only when the backend does not have the VM and is set to
        stay silent (:class:`Silenceable`); never raises."""
        ...

    def dropped(self, requester: str, kind: DropKind, reason: str) -> None:
        """Tell core that an input was refused before it became a request (for the
        ``fence_virt_request_dropped`` observers: metrics of authentication failures and
        dropped datagrams). Plain ``def``: returns at once, never raises. The listener logs
        the drop itself (:class:`fence_virt.listening.DropLog`)."""
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
        """Stop accepting requests, cancel in-flight work and release every socket.

        Also called after a ``start()`` that raised, to release what it had opened before
        failing: it must cope with a listener that started only in part.
        """
        ...


@runtime_checkable
class Backend(Protocol):
    """A running fencing backend built by ``fence_virt_backend_create``.

    Each method may be a plain ``def`` -- core then runs it in a worker thread, so it may block
    (libvirt, an HTTP SDK) -- or an ``async def``, which core awaits on the daemon's event loop
    and which must not block (corosync CPG, a message bus). Core calls ``start`` once before
    any operation and ``stop`` once after every listener has stopped.

    Operations are called concurrently for *different* VMs; core serializes operations on the
    same VM as far as it can tell from the request: by its UUID when it names one (any
    spelling), else by its case-folded name. Core cannot tell that a name and a UUID are the
    same VM: a backend reachable both ways serializes operations on one VM itself (the
    libvirt library locks per domain UUID), or an ``off`` by name could answer success
    half-way through a ``reboot`` by UUID. A raised exception is that request's failure
    (``Response.FAIL`` on the wire, logged with the backend's name), never the daemon's end;
    so is any code an operation may not answer (off/on/reboot/devstatus: SUCCESS or FAIL;
    status: SUCCESS, OFF or FAIL). Core answers the "null" operation itself
    (``Response.FAIL``, as the C backends do).
    """

    def describe(self) -> str:
        """One line for logs, e.g. ``libvirt qemu:///system``."""
        ...

    def start(self) -> MaybeAwaitable[None]:
        """Connect to whatever carries out fencing.

        :raises fence_virt.errors.BackendError: the hypervisor or manager cannot be reached;
            with ``fence_virtd -w`` core retries every 5 seconds, otherwise the daemon stops.
        :raises fence_virt.errors.UserError: anything the administrator must fix first.
        """
        ...

    def stop(self) -> MaybeAwaitable[None]:
        """Release connections; no operation is called afterwards. Not called when
        ``start()`` failed."""
        ...

    def off(self, target: Target) -> MaybeAwaitable[Response]:
        """Power the VM off, hard, and return only once it really is off.

        :returns: ``Response.SUCCESS`` when the VM is off (also if it already was);
            ``Response.FAIL`` when it is unknown or could not be stopped.
        """
        ...

    def on(self, target: Target) -> MaybeAwaitable[Response]:
        """Power the VM on.

        :returns: ``Response.SUCCESS`` when it runs (also if it already did);
            ``Response.FAIL`` when it is unknown or could not be started.
        """
        ...

    def reboot(self, target: Target) -> MaybeAwaitable[Response]:
        """Power the VM off, wait until it is really off, then power it on again.

        A VM that is already off stays off and the answer is ``Response.SUCCESS`` (as in C:
        "reboot does not power on nodes that are powered off").
        """
        ...

    def status(self, target: Target) -> MaybeAwaitable[Response]:
        """Report the VM's power state.

        :returns: ``Response.SUCCESS`` if it is on, ``Response.OFF`` if it is off,
            ``Response.FAIL`` if it is unknown or its state cannot be read.
        """
        ...

    def devstatus(self) -> MaybeAwaitable[Response]:
        """Report whether the backend itself works (the agent's "monitor" action).

        :returns: ``Response.SUCCESS`` when healthy, ``Response.FAIL`` otherwise.
        """
        ...

    def hostlist(self, requester: str) -> MaybeAwaitable[Sequence[HostState]]:
        """List the VMs this backend can fence, in the order clients should print them.

        Core filters the list through the listener's static map and the authorization hooks.

        :param requester: who asked (IP text, CID or guest UUID), for backends that care.
        :returns: :class:`fence_virt.protocol.HostState` rows (name, UUID, raw
            ``virDomainState`` number).
        :raises fence_virt.errors.BackendError: when the list cannot be produced.
        """
        ...


@dataclass(frozen=True, slots=True)
class FinishedRequest:
    """One answered request, as ``fence_virt_request_finished`` observers receive it."""

    operation: Operation
    #: the VM and the requester; ``domain`` is empty for devstatus and host lists
    target: Target
    #: the listener instance that received it (its block name, e.g. ``multicast``)
    listener: str
    #: the answer sent (``Response.PERM`` when a permission check refused it)
    response: Response
    #: when core received it: seconds since the epoch (``time.time()``)
    started: float
    #: seconds from receipt to answer
    duration: float
    #: why it was refused or failed (static map, an authorization plugin, a backend error);
    #: ``None`` for a normal answer
    reason: str | None = None
    #: the id on every log line of this request (:mod:`fence_virt.tracing`)
    request_id: str | None = None


# ---------------------------------------------------------------------------------------------
# fence_virtd --check


class Severity(enum.Enum):
    """How bad one :class:`Finding` is; any ``PROBLEM`` makes ``fence_virtd --check`` exit 1."""

    OK = "ok"
    #: works, but the administrator should know (e.g. a key file's mode was tightened)
    WARNING = "warning"
    #: fencing would fail or be unsafe as configured
    PROBLEM = "PROBLEM"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``fence_virtd --check``: what was checked and, for a problem, what to do."""

    severity: Severity
    #: one line, e.g. "cannot join multicast group 225.0.0.12 on virbr0: No such device"
    text: str
    #: one line saying what to change, e.g. 'set interface = "virbr0"'; ``None`` for ok lines
    fix: str | None = None

    @classmethod
    def ok(cls, text: str) -> Finding:
        return cls(Severity.OK, text)

    @classmethod
    def warning(cls, text: str, fix: str | None = None) -> Finding:
        return cls(Severity.WARNING, text, fix)

    @classmethod
    def problem(cls, text: str, fix: str) -> Finding:
        return cls(Severity.PROBLEM, text, fix)

    @property
    def is_problem(self) -> bool:
        return self.severity is Severity.PROBLEM


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What ``fence_virtd --check`` knows besides the configuration."""

    #: the bytes of a key file copied from a guest (``--key-of-guest FILE``), to compare with
    #: the listener's key; ``None`` when not given
    guest_key: bytes | None = None
    #: where ``guest_key`` was read from, for messages
    guest_key_file: str | None = None


@runtime_checkable
class Silenceable(Protocol):
    """Optional method of a :class:`Backend` object: stay silent about VMs it does not have.

    With several hosts in one multicast group, each receives every request and the client
    takes the first host that connects back (c-suite-spec §9.2 #23): a host without the VM
    that answers first decides the outcome. A backend that knows which VMs are its own and
    is configured to (the libvirt backend's ``unknown_vm = "silent"``) lets the hosts
    without the VM stay silent. Asked by :meth:`Dispatcher.should_answer` for off, on, reboot and
    status only.
    """

    def keeps_silent(self, target: Target) -> MaybeAwaitable[bool]:
        """True to send no answer at all for ``target`` (it is not here). A plain ``def``
        runs in a worker thread. An exception counts as False: the request is answered."""
        ...


@runtime_checkable
class Diagnosable(Protocol):
    """Optional method of a :class:`Listener` or :class:`Backend` object: its own checks.

    ``fence_virtd --check`` calls it after building the object -- for a listener before
    ``start()`` (it may bind a socket and close it again to see whether it could), for a
    backend after a successful ``start()`` (it may use its connections) -- and prints each
    finding as one line. A plain ``def`` runs in a worker thread, an ``async def`` on the
    event loop. What core checks itself (the backend starts, the VMs it lists, static maps
    naming VMs the backend does not list) need not be repeated here.
    """

    def diagnose(self, context: CheckContext) -> MaybeAwaitable[Sequence[Finding]]:
        """Check what only this plugin knows: key files, sockets, routes, hypervisor URIs.

        :param context: the guest's key, if the administrator gave one.
        :returns: findings in the order to print them; a problem carries its fix.
        :raises Exception: counts as one problem naming the plugin (never ends the check).
        """
        ...


@dataclass(frozen=True, slots=True)
class WizardQuestion:
    """One question ``fence_virtd -c`` asks about a key of a plugin's block.

    A plugin object (the class or module its entry point names) may declare
    ``wizard_questions: tuple[WizardQuestion, ...]``: the wizard then asks them, in order,
    when that plugin is chosen for a listener instance or as the backend, and stores each
    answer as ``key = "answer";`` in the instance's (or backend's) block. Without the
    attribute the wizard asks nothing and says it cannot configure the plugin. The answer is
    checked as declared; what only the plugin can check is checked when the daemon starts
    (and by ``fence_virtd --check``).
    """

    #: the config key the answer is stored under (``uri``, ``port``, ...)
    key: str
    #: the prompt, shown as ``PROMPT [default]:`` followed by a space
    prompt: str
    #: the default answer; ``None``: no default, an answer is required
    default: str | None = None
    #: the answer ``none`` removes the key (an optional key)
    removable: bool = False
    #: the only answers accepted (compared without case); empty: any
    choices: tuple[str, ...] = ()
    #: the answer must be a whole number in this inclusive range
    number: tuple[int, int] | None = None
    #: what such a number is, for the refusal (``port number``)
    number_name: str = "number"
    #: the answer is a file or directory that must be an absolute path (else confirmed)
    absolute_path: bool = False
    #: text shown before the question (an explanation, as C's pages have)
    intro: str = ""
    #: the key may be given several times (amqp's ``uri``, one per hypervisor): the question
    #: shows and replaces the first entry, and the others are kept
    repeatable: bool = False

    def problem(self, answer: str) -> str | None:
        """Why ``answer`` is refused (one line), or ``None`` when it is accepted.

        ``absolute_path`` is not checked here: a relative path is confirmed, not refused.
        """
        if self.removable and answer.lower() == "none":
            return None
        if not answer:
            return "An answer is required."
        if self.choices and answer.lower() not in (choice.lower() for choice in self.choices):
            return f"{answer} is not one of {', '.join(self.choices)}."
        if self.number is not None:
            low, high = self.number
            # ASCII only: C reads these with atoi, and int() takes other digits (or not: "²")
            if not (answer.isascii() and answer.isdigit() and low <= int(answer) <= high):
                return f"{answer} is not a {self.number_name} ({low}-{high})."
        return None
