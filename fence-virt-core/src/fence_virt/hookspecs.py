"""The plugin contract of fence_virtd: every hook a plugin may implement.

This module is the reference for plugin authors. A plugin is an object (usually a class,
instantiated once by core) registered under an entry point in one of three groups::

    [project.entry-points."fence_virt.listeners"]
    multicast = "fence_virt_listener_multicast.plugin:MulticastListenerPlugin"

    [project.entry-points."fence_virt.backends"]
    libvirt = "fence_virt_backend_libvirt.plugin:LibvirtBackendPlugin"

    [project.entry-points."fence_virt.extensions"]
    audit = "fence_virt_audit:AuditPlugin"

The entry-point name is the name administrators write in ``fence_virt.conf``. A **listener**
plugin builds listener objects, one per listener instance the configuration asks for
(``fence_virtd { listener = "multicast"; }``, section ``listeners { multicast { ... } }``); a
**backend** plugin builds the one backend object (``backend = "libvirt";``, section
``backends { libvirt { ... } }``); an **extension** takes part in every request through the
cross-cutting hooks below and is enabled by its section ``extensions { NAME { ... } }``. If
the entry point names a class, core instantiates it with no arguments; otherwise it registers
the object as is. The first line of the object's docstring is the description
``fence_virtd --list-plugins`` shows.

Mark implementations with :data:`fence_virt.hookimpl`; an implementation may accept any
subset of a hook's arguments, and core always calls hooks with keyword arguments.

Two sorts of hooks:

* **Factory hooks** (``*_check``, ``*_create``, ``*_configure``) are called on *one* plugin at
  a time -- the one the configuration names -- so they are ``firstresult`` and ``None`` means
  "not implemented".
* **Cross-cutting hooks** (``fence_virt_authorize``, the observers
  ``fence_virt_request_finished``, ``fence_virt_request_dropped``,
  ``fence_virt_backend_state``, and ``fence_virt_daemon_started`` /
  ``fence_virt_daemon_stopped``) are called on *every* registered plugin that implements
  them: the daemon's listener and backend plugins and every enabled extension. One failing
  implementation does not keep the others from being called.

Every hook implementation is a plain ``def``: core calls them synchronously, and refuses a
plugin whose hook is a coroutine function (it would never run).

Threading: factory hooks run in the main thread while the daemon is being built, before its
event loop runs (``fence_virt_backend_check`` may open and close a connection);
cross-cutting hooks run on the event-loop thread for every request and must not block. The
objects the factory hooks return have their own rules (:class:`fence_virt.Listener`,
:class:`fence_virt.Backend`).

Errors: raise :class:`fence_virt.errors.ConfigError` (use ``section.error(key, message)``) or
another :class:`fence_virt.errors.UserError` for problems the administrator must fix;
:class:`fence_virt.errors.BackendError` for a failed operation. Core logs them with the
plugin's name. Never swallow an error to look healthy: a host that cannot fence but says it
can is the worst outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fence_virt.config import ConfigSection, ConfigTree
    from fence_virt.protocol import HostState, Operation
    from fence_virt.types import (
        Availability,
        Backend,
        DroppedRequest,
        FinishedRequest,
        Listener,
        Target,
    )

#: pluggy project name; also the prefix of every hook
PROJECT_NAME = "fence_virt"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------
# listener plugins


@hookspec(firstresult=True)
def fence_virt_listener_check(section: ConfigSection, config: ConfigTree) -> Availability:
    """Say whether this listener can run on this host with this configuration.

    Called for ``--list-plugins`` and when the daemon picks a listener by itself (no
    ``listener`` in the config). Must be quick and side-effect free: do not bind sockets.
    Stops at the first non-``None`` result (only the plugin asked implements it).

    :param section: the plugin's block ``listeners { NAME { ... } }`` (``section.present`` is
        false when the file has none).
    :param config: the whole parsed configuration (read-only).
    :returns: :class:`fence_virt.Availability` with a one-line reason either way.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_listener_create(section: ConfigSection, config: ConfigTree) -> Listener:
    """Build one listener instance from its block, without opening sockets yet.

    Called once per instance: a daemon may run several instances of one plugin, each with its
    own block (``listeners { cluster-b { plugin = "multicast"; port = "1230"; } }``), whose
    name ``section.name`` is the instance's name for logs. Validate every setting here
    (``section.load(Schema)``), so that a bad value stops the daemon before anything is bound;
    read key files here too. Stops at the first non-``None`` result.

    :param section: the instance's block (core removes the ``plugin`` key and the
        ``groups`` static map before handing it over).
    :param config: the whole parsed configuration (read-only).
    :returns: an object satisfying :class:`fence_virt.Listener`; core then awaits its
        ``start(dispatcher)`` and, at shutdown, its ``stop()``.
    :raises fence_virt.errors.ConfigError: on a bad setting (names file:line).
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# backend plugins


@hookspec(firstresult=True)
def fence_virt_backend_check(section: ConfigSection, config: ConfigTree) -> Availability:
    """Say whether this backend can run on this host with this configuration.

    May open and close a connection to find out (e.g. "libvirt URI qemu:///system
    connects", "corosync is not running"), but must not keep any state. Stops at the first
    non-``None`` result.

    :param section: the plugin's block ``backends { NAME { ... } }``.
    :param config: the whole parsed configuration (read-only).
    :returns: :class:`fence_virt.Availability` with a one-line reason either way.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fence_virt_backend_create(section: ConfigSection, config: ConfigTree) -> Backend:
    """Build the backend from its block, without connecting yet.

    Validate every setting here; core then calls the object's ``start()`` (retried every
    5 s with ``fence_virtd -w``), its operations, and ``stop()`` at shutdown. Stops at the
    first non-``None`` result.

    :param section: the plugin's block ``backends { NAME { ... } }``.
    :param config: the whole parsed configuration (read-only).
    :returns: an object satisfying :class:`fence_virt.Backend`.
    :raises fence_virt.errors.ConfigError: on a bad setting (names file:line).
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# extension plugins


@hookspec(firstresult=True)
def fence_virt_extension_configure(section: ConfigSection, config: ConfigTree) -> bool:
    """Read the extension's block before the daemon starts; optional.

    Called once, when ``extensions { NAME { ... } }`` enables the extension. Stops at the
    first non-``None`` result.

    :param section: the extension's block.
    :param config: the whole parsed configuration (read-only).
    :returns: ``True`` (any non-``None`` value) once configured; an object with a
        ``diagnose(context)`` method (:class:`fence_virt.Diagnosable`, e.g. the plugin
        itself) adds its findings to ``fence_virtd --check`` (can its port be bound).
    :raises fence_virt.errors.ConfigError: on a bad setting (names file:line); the daemon
        does not start.
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# cross-cutting hooks: every implementation is called


@hookspec
def fence_virt_authorize(
    operation: Operation, target: Target, listener: str, vm: HostState | None
) -> bool | None:
    """Decide whether ``target.requester`` may carry out ``operation`` on ``target``.

    Consulted besides the listener's static map for off, on, reboot and status, and once per
    VM when a host list is filtered (``operation`` is ``Operation.HOSTLIST`` and ``vm`` the
    row; ``target.domain`` its name). A request goes ahead only if the static map allows it
    and no implementation answers ``False``; an implementation that raises counts as
    ``False`` (fail closed). Runs on the event loop for every request: answer from memory.

    :param operation: the requested operation.
    :param target: the VM named in the request and who asked.
    :param listener: the listener instance that received the request.
    :param vm: the host-list row being filtered, else ``None``.
    :returns: ``True`` to allow, ``False`` to refuse (the client gets "permission denied"),
        ``None`` for no opinion.
    """
    raise NotImplementedError


@hookspec
def fence_virt_request_finished(request: FinishedRequest) -> None:
    """Observe one answered request: for metrics, audit trails, notifications.

    Called once per request that reached core (refused ones included), right after its
    answer is known -- scheduled on the event loop, so the client's answer is not held up.
    Must not block: hand slow work (files, network) to a thread or a queue of your own.
    An exception is logged with the plugin's name and does not affect the request.

    :param request: what was asked, by whom, through which listener instance, the answer
        and how long it took.
    :returns: nothing.
    """
    raise NotImplementedError


@hookspec
def fence_virt_request_dropped(drop: DroppedRequest) -> None:
    """Observe one input a listener refused before it became a request: for metrics.

    Wrongly signed datagrams and failed challenge/responses (``drop.kind`` is
    ``DropKind.AUTHENTICATION``: a key mismatch or an attacker), garbage, replays and
    overload. Called for every one, also those the listener's rate-limited log does not
    show, so it can come in floods: count in memory and return. Scheduled on the event loop
    like ``fence_virt_request_finished``; an exception is logged with the plugin's name.

    :param drop: which listener instance, who sent it (unverified), why.
    :returns: nothing.
    """
    raise NotImplementedError


@hookspec
def fence_virt_backend_state(backend: str, up: bool, reason: str) -> None:
    """Observe the backend starting and stopping: for a "backend up" metric or an alert.

    Called with ``up=True`` once ``start()`` succeeded, ``up=False`` for each failed
    ``start()`` (also every 5 s while ``fence_virtd -w`` waits) and after ``stop()``. Core
    sees only start and stop; a backend that loses its hypervisor while running says so in
    the answers (``devstatus`` failing), which ``fence_virt_request_finished`` shows.

    :param backend: the backend plugin's name (``libvirt``).
    :param up: whether it is running now.
    :param reason: one line, e.g. "started", "cannot connect to qemu:///system: ...".
    :returns: nothing.
    """
    raise NotImplementedError


@hookspec
def fence_virt_daemon_started() -> None:
    """Acquire what the plugin needs while the daemon serves: the daemon has started.

    Called once, when the backend runs and every listener is bound (the moment systemd is
    told ``READY=1``), on the event-loop thread: a metrics extension starts its HTTP server
    here (never in ``fence_virt_extension_configure``, which ``fence_virtd --check`` calls
    too). Release it in ``fence_virt_daemon_stopped``. An exception is logged with the
    plugin's name and the daemon serves on.

    :returns: nothing.
    """
    raise NotImplementedError


@hookspec
def fence_virt_daemon_stopped() -> None:
    """Release what the plugin holds for the daemon's life: the daemon has stopped.

    Called once, after every listener and the backend have stopped (also after a start that
    failed), on every registered plugin that implements it -- for an audit extension to flush
    and close its file, say. An exception is logged with the plugin's name.

    :returns: nothing.
    """
    raise NotImplementedError
