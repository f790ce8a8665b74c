"""The fence_virtd application object: one backend, any number of listener instances.

A :class:`Daemon` is built from a parsed configuration (plugins chosen and loaded, every
listener and the backend constructed -- so every configuration error surfaces before
anything is bound), then started, run and stopped on an asyncio loop. It knows nothing of
processes, pid files, signals or wire formats: the CLI (:mod:`fence_virt.daemon.cli`) owns
the first three, listeners own the last. Tests and embedders use it directly::

    daemon = Daemon.from_config(parse_text(text))
    async with daemon:            # start(); ... stop()
        ...

Start order: the backend (retried every 5 s while it raises BackendError, with
``wait_for_backend``), then each listener instance in configuration order; then the
``fence_virt_daemon_started`` hook. The ``fence_virt_backend_state`` observers hear of every
start, failed start and stop of the backend. If any step
fails, what started is stopped again and the error propagates. Stop order: listeners first
(no new requests; in-flight ones cancelled), then the backend, then the worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from fence_virt.config import ConfigTree
from fence_virt.daemon.dispatch import DEFAULT_DEADLINE, BackendRunner, RequestDispatcher
from fence_virt.daemon.selection import DaemonPlan, plan_daemon
from fence_virt.daemon.settings import daemon_settings
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, LocalError, UserError
from fence_virt.plugins import PluginEntry, PluginHooks, build_plugin_manager
from fence_virt.types import Backend, Listener

__all__ = [
    "BACKEND_RETRY_SECONDS",
    "MAX_WORKERS",
    "STOP_GRACE_SECONDS",
    "Daemon",
    "ListenerInstance",
]

log = logging.getLogger("fence_virt.daemon")

#: C's -w retries initialisation every 5 s (main.c)
BACKEND_RETRY_SECONDS = 5.0
#: worker threads for blocking backend calls: one per VM being fenced at once, generously
MAX_WORKERS = 64
#: seconds stop() waits for backend calls still running (C waits forever: it is one thread)
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class ListenerInstance:
    """A built listener and what core keeps about it."""

    #: the instance's name (its block name), in logs and observer records
    name: str
    entry: PluginEntry
    listener: Listener
    static_map: StaticMap

    def describe(self) -> str:
        return f"{self.name} ({self.listener.describe()})"


class Daemon:
    """fence_virtd's running core: start, serve until asked to stop, stop."""

    def __init__(
        self,
        *,
        hooks: PluginHooks,
        backend: Backend,
        backend_entry: PluginEntry,
        listeners: Sequence[ListenerInstance],
        wait_for_backend: bool = False,
        backend_retry: float = BACKEND_RETRY_SECONDS,
        stop_grace: float = STOP_GRACE_SECONDS,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        """``deadline``: seconds each request has until its answer is due (``fence_virtd {
        deadline }``, see :mod:`fence_virt.daemon.dispatch`)."""
        if not listeners:
            raise LocalError("a daemon needs at least one listener instance")
        self.hooks = hooks
        self.backend = backend
        self.backend_entry = backend_entry
        self.listeners = tuple(listeners)
        self.wait_for_backend = wait_for_backend
        self._backend_retry = backend_retry
        #: called with (why, seconds until the next attempt) each time ``-w`` waits for the
        #: backend (the systemd notifier's :meth:`~fence_virt.daemon.systemd.Notifier.waiting`)
        self.on_backend_wait: Callable[[str, float], None] = lambda _why, _seconds: None
        self._stop_grace = stop_grace
        self.deadline = deadline
        #: backend calls left running by :meth:`stop` (see there); 0 when all ended
        self.abandoned_calls = 0
        self._backend_started = False
        self._stopping: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._runner: BackendRunner | None = None
        self._started: list[ListenerInstance] = []

    # building ---------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: ConfigTree, *, wait_for_backend: bool = False) -> Daemon:
        """Choose, load and build every plugin ``config`` asks for; nothing is started.

        :raises fence_virt.errors.UserError: a configuration error (file:line), a missing or
            broken plugin (named with its distribution), or nothing that can run here.
        """
        return cls.from_plan(config, plan_daemon(config), wait_for_backend=wait_for_backend)

    @classmethod
    def from_plan(
        cls, config: ConfigTree, plan: DaemonPlan, *, wait_for_backend: bool = False
    ) -> Daemon:
        """Build the plugin objects a :class:`DaemonPlan` names (see :meth:`from_config`)."""
        entries = plan.entries
        hooks = PluginHooks(build_plugin_manager(entries), entries)
        for extension in plan.extensions:
            hooks.extension_configure(extension.entry, extension.section, config)
        for chosen in plan.listeners:
            _log_choice(chosen.entry, "listener", chosen.why, instance=chosen.name)
        _log_choice(plan.backend, "backend", plan.backend_why)
        for extension in plan.extensions:
            node = extension.section.node
            where = f"{extension.section.source}:{node.line if node is not None else 0}"
            why = f"enabled by its block at {where}"
            _log_choice(extension.entry, "extension", why)
        listeners = [
            ListenerInstance(
                name=chosen.name,
                entry=chosen.entry,
                listener=hooks.listener_create(chosen.entry, chosen.section, config),
                static_map=chosen.static_map,
            )
            for chosen in plan.listeners
        ]
        backend = hooks.backend_create(plan.backend, plan.backend_section, config)
        return cls(
            hooks=hooks,
            backend=backend,
            backend_entry=plan.backend,
            listeners=listeners,
            wait_for_backend=wait_for_backend,
            deadline=daemon_settings(config).deadline,
        )

    # running ----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`run` (or a backend wait in :meth:`start`) to finish; safe to repeat.

        Call it on the daemon's event loop (signal handlers added with
        ``loop.add_signal_handler`` are).
        """
        if self._stopping is None:
            self._stopping = asyncio.Event()
        self._stopping.set()

    def _stop_event(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    async def start(self) -> bool:
        """Start the backend, then every listener instance.

        :returns: ``False`` if :meth:`request_stop` was called while waiting for the backend
            (nothing is running then), else ``True``.
        :raises fence_virt.errors.UserError: a listener cannot start (port in use, ...),
            named with its instance, or the backend cannot start (its BackendError, with
            ``wait_for_backend`` off); what had started is stopped first.
        """
        if self._runner is not None:
            raise LocalError("daemon started twice")
        self._executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="backend")
        self._runner = BackendRunner(self.backend, self.backend_entry, self._executor)
        try:
            if not await self._start_backend(self._runner):
                log.info(
                    "fence_virtd stopped while waiting for backend %s", self.backend_entry.name
                )
                await self.stop()
                return False
            self._backend_started = True
            self.hooks.backend_state(self.backend_entry.name, up=True, reason="started")
            await self._start_listeners(self._runner)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "fence_virtd started: listener %s, backend %s (%s)",
            ", ".join(instance.describe() for instance in self.listeners),
            self.backend_entry.name,
            self.backend.describe(),
        )
        self.hooks.daemon_started()
        return True

    async def _attempt_start(self, runner: BackendRunner) -> bool | None:
        """One ``backend.start()``: True once started, None if a stop was asked meanwhile.

        A stop does not wait for a ``start()`` that hangs (a blocked connect): the attempt is
        abandoned, and :meth:`stop` leaves it behind after its grace period.
        """
        stopping = asyncio.ensure_future(self._stop_event().wait())
        attempt = asyncio.ensure_future(runner.start())
        try:
            await asyncio.wait({attempt, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not attempt.done():
            attempt.cancel()
            return None
        attempt.result()
        return True

    async def _start_backend(self, runner: BackendRunner) -> bool:
        stopping = self._stop_event()
        while not stopping.is_set():
            try:
                if await self._attempt_start(runner) is None:
                    return False
            except BackendError as exc:
                self.hooks.backend_state(self.backend_entry.name, up=False, reason=str(exc))
                if not self.wait_for_backend:
                    raise UserError(
                        f"backend {self.backend_entry.name} failed to start: {exc} "
                        "(fence_virtd -w retries until it can)"
                    ) from exc
                log.warning(
                    "backend %s failed to start (%s); retrying in %.0f s",
                    self.backend_entry.name,
                    exc,
                    self._backend_retry,
                )
                self.on_backend_wait(
                    f"waiting for backend {self.backend_entry.name}: {exc}", self._backend_retry
                )
                try:
                    await asyncio.wait_for(stopping.wait(), self._backend_retry)
                except TimeoutError:
                    continue
            else:
                return True
        return False

    async def _start_listeners(self, runner: BackendRunner) -> None:
        for instance in self.listeners:
            dispatcher = RequestDispatcher(
                runner, self.hooks, instance.name, instance.static_map, self.deadline
            )
            # listed before it starts: a start() that fails half-way (a socket bound, the next
            # one refused) is stopped like the others, so nothing it opened keeps serving
            self._started.append(instance)
            try:
                await instance.listener.start(dispatcher)
            except (OSError, UserError) as exc:
                raise UserError(f"listener {instance.describe()} failed to start: {exc}") from exc

    async def stop(self) -> None:
        """Stop every started listener, then the backend (if it started); release the workers.

        Backend calls still running get :data:`STOP_GRACE_SECONDS`; any left after that (a
        hypervisor call that hangs) are abandoned with a warning, and :attr:`abandoned_calls`
        tells the process to exit without joining their threads.
        """
        while self._started:
            instance = self._started.pop()
            try:
                await instance.listener.stop()
            except Exception:
                log.exception("listener %s failed to stop", instance.describe())
        runner, self._runner = self._runner, None
        if runner is not None and self._backend_started:
            self._backend_started = False
            try:
                await runner.stop()
            except Exception:
                log.exception("backend %s failed to stop", self.backend_entry.name)
            self.hooks.backend_state(self.backend_entry.name, up=False, reason="stopped")
        if runner is not None:
            await self._release(runner)
        self.hooks.daemon_stopped()

    async def _release(self, runner: BackendRunner) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        running = await asyncio.to_thread(runner.wait_for_calls, self._stop_grace)
        executor.shutdown(wait=False, cancel_futures=True)
        if running:
            self.abandoned_calls = running
            log.warning(
                "%d backend call(s) still running %.0f s after the stop (a hung hypervisor?): "
                "leaving them behind",
                running,
                self._stop_grace,
            )

    async def run(self, ready: Callable[[], None] = lambda: None) -> None:
        """Start, call ``ready()``, serve until :meth:`request_stop`, stop."""
        if not await self.start():
            return
        try:
            ready()
            await self._stop_event().wait()
            log.info("fence_virtd shutting down")
        finally:
            await self.stop()

    async def __aenter__(self) -> Daemon:
        if not await self.start():
            raise LocalError("daemon stopped while waiting for its backend")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _log_choice(entry: PluginEntry, role: str, why: str, instance: str | None = None) -> None:
    named = f" as instance {instance}" if instance not in (None, entry.name) else ""
    log.info(
        "%s: %s from %s %s%s (%s)", role, entry.name, entry.distribution, entry.version, named, why
    )
