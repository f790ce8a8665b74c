"""The plugin contract of fence_virtd: every hook a listener or backend plugin may implement.

This module is the reference for plugin authors. A plugin is an object (usually a class,
instantiated once by core) registered under an entry point in one of two groups::

    [project.entry-points."fence_virt.listeners"]
    multicast = "fence_virt_listener_multicast.plugin:MulticastListenerPlugin"

    [project.entry-points."fence_virt.backends"]
    libvirt = "fence_virt_backend_libvirt.plugin:LibvirtBackendPlugin"

The entry-point name is the name administrators write in ``fence_virt.conf``
(``fence_virtd { listener = "multicast"; backend = "libvirt"; }``) and the name of the
plugin's own config section (``listeners { multicast { ... } }``). If the entry point names a
class, core instantiates it with no arguments; otherwise it registers the object as is. The
first line of the object's docstring is the description ``fence_virtd --list-plugins`` shows.

Mark implementations with :data:`fence_virt.hookimpl`; an implementation may accept any
subset of a hook's arguments, and core always calls hooks with keyword arguments. Core
registers exactly one listener and one backend in a daemon, so every hook here stops at the
first non-``None`` result (``firstresult``); ``None`` means "not implemented".

Threading: listener hooks and ``fence_virt_*_check`` run on the daemon's asyncio event-loop
thread and must not block for long. Backend start/stop and operation hooks run in worker
threads; operation hooks may be called concurrently for *different* VMs (core serializes
operations on the same VM name), so protect shared state such as hypervisor connections.

Errors: raise :class:`fence_virt.errors.UserError` (or :class:`ConfigError`) for problems
the administrator must fix; :class:`fence_virt.errors.BackendError` for a failed operation.
Core logs them with the plugin's name. Never swallow an error to look healthy: a host that
cannot fence but says it can is the worst outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fence_virt.config import ConfigNode, ConfigTree
    from fence_virt.protocol import HostState, Response
    from fence_virt.types import Availability, Listener, Target

#: pluggy project name; also the prefix of every hook
PROJECT_NAME = "fence_virt"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------
# listener hooks


@hookspec(firstresult=True)
def fence_virt_listener_check(section: ConfigNode | None, config: ConfigTree) -> Availability:
    """Say whether this listener can run on this host with this configuration.

    Called for ``--list-plugins`` and when the daemon picks a listener by itself (no
    ``listener`` in the config). Must be quick and side-effect free: do not bind sockets.

    :param section: the plugin's ``listeners { NAME { ... } }`` block, or ``None`` if absent.
    :param config: the whole parsed configuration (read-only).
    :returns: :class:`fence_virt.Availability` with a one-line reason either way.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_listener_create(section: ConfigNode | None, config: ConfigTree) -> Listener:
    """Build the listener from its configuration section, without opening sockets yet.

    Validate every setting here (use :func:`fence_virt.config.load_section`), so that a bad
    value stops the daemon before anything is bound. Key files are read here too.

    :param section: the plugin's ``listeners { NAME { ... } }`` block, or ``None`` if absent.
    :param config: the whole parsed configuration (read-only).
    :returns: an object satisfying :class:`fence_virt.Listener`; core then awaits its
        ``start(dispatcher)`` and, at shutdown, its ``stop()``.
    :raises fence_virt.errors.ConfigError: on a bad setting (names file:line).
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# backend hooks: life cycle


@hookspec(firstresult=True)
def fence_virt_backend_check(section: ConfigNode | None, config: ConfigTree) -> Availability:
    """Say whether this backend can run on this host with this configuration.

    Runs in a worker thread; may open and close a connection to find out (e.g. "libvirt URI
    qemu:///system connects", "corosync is not running"). Must not keep any state.

    :param section: the plugin's ``backends { NAME { ... } }`` block, or ``None`` if absent.
    :param config: the whole parsed configuration (read-only).
    :returns: :class:`fence_virt.Availability` with a one-line reason either way.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_start(section: ConfigNode | None, config: ConfigTree) -> bool:
    """Connect to whatever carries out fencing; called once before any operation.

    Runs in a worker thread. With ``fence_virtd -w`` core retries every 5 seconds while this
    raises :class:`fence_virt.errors.BackendError`; any other exception stops the daemon.

    :param section: the plugin's ``backends { NAME { ... } }`` block, or ``None`` if absent.
    :param config: the whole parsed configuration (read-only).
    :returns: ``True`` once started.
    :raises fence_virt.errors.ConfigError: on a bad setting (names file:line).
    :raises fence_virt.errors.BackendError: when the hypervisor cannot be reached.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_stop() -> bool:
    """Release connections; called once at shutdown, after the listener has stopped.

    :returns: ``True`` once stopped.
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# backend hooks: operations (worker threads; concurrent for different VMs)


@hookspec(firstresult=True)
def fence_virt_backend_null(target: Target) -> Response:
    """Answer the "null" operation (a no-op probe). The C backends answer ``Response.FAIL``.

    :param target: the VM named in the request and who asked.
    :returns: a :class:`fence_virt.protocol.Response`.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_off(target: Target) -> Response:
    """Power the VM off, hard, and return only once it really is off.

    :param target: the VM named in the request and who asked.
    :returns: ``Response.SUCCESS`` when the VM is off (also if it already was);
        ``Response.FAIL`` when it is unknown or could not be stopped.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_on(target: Target) -> Response:
    """Power the VM on.

    :param target: the VM named in the request and who asked.
    :returns: ``Response.SUCCESS`` when it runs (also if it already did); ``Response.FAIL``
        when it is unknown or could not be started.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_reboot(target: Target) -> Response:
    """Power the VM off, wait until it is really off, then power it on again.

    A VM that is already off stays off and the answer is ``Response.SUCCESS`` (as in C:
    "reboot does not power on nodes that are powered off").

    :param target: the VM named in the request and who asked.
    :returns: ``Response.SUCCESS`` or ``Response.FAIL``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_status(target: Target) -> Response:
    """Report the VM's power state.

    :param target: the VM named in the request and who asked.
    :returns: ``Response.SUCCESS`` if it is on, ``Response.OFF`` if it is off,
        ``Response.FAIL`` if it is unknown or the state cannot be read.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_devstatus() -> Response:
    """Report whether the backend itself works (the agent's "monitor" action).

    :returns: ``Response.SUCCESS`` when healthy, ``Response.FAIL`` otherwise.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_hostlist(requester: str) -> Sequence[HostState]:
    """List the VMs this backend can fence, in the order clients should print them.

    Core filters the result through the static permission map before sending it.

    :param requester: who asked (IP text, CID or guest UUID), for backends that care.
    :returns: a sequence of :class:`fence_virt.protocol.HostState` (name, UUID, raw libvirt
        ``virDomainState`` number).
    :raises fence_virt.errors.BackendError: when the list cannot be produced.
    """
    raise NotImplementedError
