"""From a listener's request to the backend and back: permissions, per-VM order, threads.

Two parts. :class:`BackendRunner` is the daemon's one way into the backend object: it maps
an :class:`~fence_virt.protocol.Operation` to the backend method (the only place that
does), runs ``def`` methods in the worker pool and awaits ``async def`` ones on the loop,
serializes operations on the same VM and checks what comes back. :class:`RequestDispatcher`
is what one listener instance is given (:class:`fence_virt.Dispatcher`): it applies that
instance's static map and the authorization hooks, logs the request, and tells the
observers when it is answered.

Invariants:

* operations on the same VM (by case-insensitive domain text) run one at a time, in arrival
  order; operations on different VMs run concurrently;
* a backend failure of any kind -- an exception, a value that is not a response code -- is
  ``Response.FAIL`` for that request and a log line naming the backend plugin; it never
  propagates into the listener (the daemon never dies from one request) and never becomes
  success;
* off, on, reboot and status are checked against the instance's static map and the
  authorization hooks (C: null and devstatus are not); a refusal is ``Response.PERM`` and
  the backend is not called; host lists are filtered the same way, row by row;
* "null" is answered ``Response.FAIL`` without calling the backend, as the C backends do;
* every request has a deadline (``fence_virtd { deadline }``, default
  :data:`DEFAULT_DEADLINE`, counted from the moment the listener hands it over), passed to
  the backend in :attr:`Target.deadline <fence_virt.Target.deadline>`. A backend call that has
  not started by then -- still waiting for an earlier operation on the same VM, or for a
  worker thread -- is never started: the request is answered FAIL and logged. A call still
  running at the deadline is answered FAIL and logged too, but goes on (a destroy half done
  is worse than a late one); its outcome is logged when it ends, and the VM's lock is held
  until then, so the next operation on that VM waits for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, FenceVirtError
from fence_virt.plugins import PluginEntry, PluginHooks
from fence_virt.protocol import HostState, Operation, Response
from fence_virt.tracing import begin_request, current_request_id
from fence_virt.types import (
    Backend,
    DropKind,
    DroppedRequest,
    FinishedRequest,
    MaybeAwaitable,
    Silenceable,
    Target,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "BackendRunner",
    "DeadlineMissed",
    "KeyedLocks",
    "RequestDispatcher",
]

log = logging.getLogger("fence_virt.dispatch")

_T = TypeVar("_T")

#: seconds from the moment a request reaches core until its answer is due: the agents'
#: default timeout (fence_xvm and fence_virt ``-t``, C and ours: 30 s), after which the
#: client has given up and the cluster may already act on the failure
DEFAULT_DEADLINE = 30.0


class DeadlineMissed(BackendError):
    """A request's deadline passed: the backend call was dropped before it started, or it was
    still running (and goes on). The request is answered FAIL."""


#: operations the static map and the authorization hooks guard (c-suite-spec §5.8)
GUARDED = frozenset({Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS})
#: operations on one VM, about which a Silenceable backend may keep silent
_LOCATED = GUARDED
#: the codes a backend may answer for each operation (fence_virt.Backend); anything else is
#: the backend's failure
ANSWERS = {
    Operation.OFF: frozenset({Response.SUCCESS, Response.FAIL}),
    Operation.ON: frozenset({Response.SUCCESS, Response.FAIL}),
    Operation.REBOOT: frozenset({Response.SUCCESS, Response.FAIL}),
    Operation.STATUS: frozenset({Response.SUCCESS, Response.OFF, Response.FAIL}),
    Operation.DEVSTATUS: frozenset({Response.SUCCESS, Response.FAIL}),
}


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def acquire(self, key: str) -> Callable[[], None]:
        """Wait for ``key``'s lock; returns the function that releases it (on the loop's
        thread; calling it again does nothing). A cancelled wait holds nothing."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._leave(key)
            raise
        held = [True]

        def release() -> None:
            if held.pop() if held else False:
                lock.release()
                self._leave(key)

        return release

    def _leave(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        release = await self.acquire(key)
        try:
            yield
        finally:
            release()

    def __len__(self) -> int:
        return len(self._locks)


def _vm_method(backend: Backend, operation: Operation) -> Callable[[Target], Any]:
    """The backend method carrying out ``operation`` on one VM: the one mapping in core."""
    match operation:
        case Operation.OFF:
            return backend.off
        case Operation.ON:
            return backend.on
        case Operation.REBOOT:
            return backend.reboot
        case Operation.STATUS:
            return backend.status
    raise ValueError(f"{operation!r} is not an operation on one VM")


def _loop_deadline(deadline: float) -> float:
    """``deadline`` (``time.monotonic()`` seconds) on the running loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


def _method_name(method: Callable[..., object]) -> str:
    return str(getattr(method, "__name__", method))


class BackendRunner:
    """Calls the backend object for every listener instance of a daemon."""

    def __init__(self, backend: Backend, entry: PluginEntry, executor: ThreadPoolExecutor) -> None:
        self.backend = backend
        self.entry = entry
        self._executor = executor
        self._locks = KeyedLocks()
        self._jobs: set[concurrent.futures.Future[Any]] = set()
        #: async backend calls answered at their deadline and still running
        self._late: set[asyncio.Task[Any]] = set()

    def _submit(self, method: Callable[..., Any], *args: object) -> concurrent.futures.Future[Any]:
        # the worker thread logs with the request's id (fence_virt.tracing)
        job = self._executor.submit(contextvars.copy_context().run, method, *args)
        # tracked until its thread ends, even if the request awaiting it is cancelled
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job

    def _checked(self, method: Callable[..., object], value: Any) -> Any:
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            raise self.entry.failure(
                f"{_method_name(method)} is a plain def but returned an awaitable: declare it "
                "async def"
            )
        return value

    async def call(self, method: Callable[..., MaybeAwaitable[_T]], *args: object) -> _T:
        """Run one backend method: ``async def`` on the loop, ``def`` in a worker thread."""
        if inspect.iscoroutinefunction(method):
            result: _T = await method(*args)
            return result
        value = await asyncio.wrap_future(self._submit(method, *args))
        return self._checked(method, value)  # type: ignore[no-any-return]

    async def call_by(
        self,
        deadline: float,
        method: Callable[..., MaybeAwaitable[_T]],
        *args: object,
        done: Callable[[], None] = lambda: None,
        what: str | None = None,
    ) -> _T:
        """Like :meth:`call`, but answer by ``deadline`` (``time.monotonic()`` seconds).

        A call that has not started by then (no worker thread was free) is never started; one
        still running is left to finish, and its outcome is logged when it ends. ``done`` runs
        on the loop exactly once, when the call has ended or was dropped, whichever way (to
        release the VM's lock only then); ``what`` names the call in logs (``"off vm1"``).

        :raises DeadlineMissed: the deadline passed first.
        """
        job: concurrent.futures.Future[Any] | None = None
        try:
            if inspect.iscoroutinefunction(method):
                work: asyncio.Future[Any] = asyncio.ensure_future(method(*args))
            else:
                job = self._submit(method, *args)
                work = asyncio.wrap_future(job)
        except BaseException:
            done()
            raise
        work.add_done_callback(lambda _: done())
        try:
            async with asyncio.timeout_at(_loop_deadline(deadline)):
                value = await asyncio.shield(work)
        except TimeoutError:
            raise self._missed(what or _method_name(method), work, job) from None
        except asyncio.CancelledError:
            work.cancel()  # a stop: never leave a call queued or an async one behind
            raise
        return self._checked(method, value)  # type: ignore[no-any-return]

    def _missed(
        self, name: str, work: asyncio.Future[Any], job: concurrent.futures.Future[Any] | None
    ) -> DeadlineMissed:
        """The error for a call whose deadline passed; drops it if it has not started."""
        # Future.cancel() succeeds only while no worker thread has taken the job, atomically
        # with the worker's check: a job is either dropped here or runs, never both
        if job is not None and job.cancel():
            return DeadlineMissed(
                f"{name} dropped, never started: no worker thread was free before its deadline"
            )
        if isinstance(work, asyncio.Task):
            self._late.add(work)
            work.add_done_callback(self._late.discard)
        since = time.monotonic()
        work.add_done_callback(lambda ended: self._log_late(name, ended, since))
        return DeadlineMissed(
            f"{name} still running at its deadline: answered FAIL; it goes on and its outcome "
            "will be logged"
        )

    def _log_late(self, name: str, ended: asyncio.Future[Any], since: float) -> None:
        later = time.monotonic() - since
        if ended.cancelled():
            outcome = "was cancelled"
        elif (exc := ended.exception()) is not None:
            outcome = f"failed: {exc}"
        else:
            value = ended.result()
            outcome = f"returned {value.name if isinstance(value, Response) else repr(value)}"
        log.warning(
            "%s (%s), answered FAIL at its deadline, ended %.1f s later: %s",
            name,
            self.entry.label,
            later,
            outcome,
        )

    def wait_for_calls(self, timeout: float) -> int:
        """Block up to ``timeout`` seconds for worker-thread calls; how many still run."""
        _done, running = concurrent.futures.wait(list(self._jobs), timeout=timeout)
        return len(running)

    async def start(self) -> None:
        await self.call(self.backend.start)

    async def stop(self) -> None:
        for task in list(self._late):
            task.cancel()
        await self.call(self.backend.stop)

    def _response(self, value: object, operation: Operation) -> Response:
        """``value`` if it is a code ``operation`` may answer (:data:`ANSWERS`), else failure.

        A bool is refused (``False == 0`` would be SUCCESS), and so is every code the
        operation has no business sending: PERM belongs to the permission checks, and 0xFD
        (HOSTLIST) makes the C agent read a host list and exit 0 for an ``off``.
        """
        allowed = ANSWERS[operation]
        if isinstance(value, int) and not isinstance(value, bool) and value in allowed:
            return Response(value)
        names = "/".join(code.name for code in sorted(allowed))
        raise self.entry.failure(
            f"{operation.name.lower()} returned {value!r}; it may answer only {names}"
        )

    async def operate(self, operation: Operation, target: Target) -> Response:
        """Carry out off/on/reboot/status on ``target``, one at a time per VM, by
        ``target.deadline`` if it has one.

        The lock key is the VM's UUID when the request names one (two spellings of one UUID
        are one VM), else its case-folded name; backends that can tell a name and a UUID of
        the same VM apart from core's view serialize those themselves (the libvirt library
        locks per domain UUID). The lock is held until the backend call has ended, also when
        the request was answered at its deadline before that.

        :raises DeadlineMissed: the deadline passed while waiting for the VM's lock (the
            backend was not called), for a worker thread (not called either), or while the
            call ran (it goes on).
        """
        method = _vm_method(self.backend, operation)
        key = target.uuid or target.domain.casefold()
        if target.deadline is None:
            async with self._locks.hold(key):
                value = await self.call(method, target)
            return self._response(value, operation)
        waiting = time.monotonic()
        try:
            async with asyncio.timeout_at(_loop_deadline(target.deadline)):
                release = await self._locks.acquire(key)
        except TimeoutError:
            raise DeadlineMissed(
                f"dropped, never started: an earlier operation on the same VM still ran at its "
                f"deadline ({time.monotonic() - waiting:.1f} s after it arrived)"
            ) from None
        what = f"{operation.name.lower()} {target.domain}"
        value = await self.call_by(target.deadline, method, target, done=release, what=what)
        return self._response(value, operation)

    async def devstatus(self, deadline: float | None = None) -> Response:
        value = await self._bounded(deadline, self.backend.devstatus)
        return self._response(value, Operation.DEVSTATUS)

    async def hostlist(self, requester: str, deadline: float | None = None) -> Sequence[HostState]:
        value = await self._bounded(deadline, self.backend.hostlist, requester)
        if not isinstance(value, Sequence) or not all(isinstance(v, HostState) for v in value):
            raise self.entry.failure(f"hostlist returned {value!r}, not a sequence of HostState")
        return value

    def _bounded(
        self, deadline: float | None, method: Callable[..., MaybeAwaitable[_T]], *args: object
    ) -> Awaitable[_T]:
        return (
            self.call(method, *args) if deadline is None else self.call_by(deadline, method, *args)
        )


class RequestDispatcher:
    """:class:`fence_virt.Dispatcher` for one listener instance."""

    def __init__(
        self,
        runner: BackendRunner,
        hooks: PluginHooks,
        listener: str,
        static_map: StaticMap,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        """``deadline``: seconds each request has, from the moment it reaches :meth:`fence` or
        :meth:`hostlist`, until its answer is due."""
        self._runner = runner
        self._hooks = hooks
        self.listener = listener
        self._map = static_map
        self.deadline = deadline

    def _due(self, target: Target) -> Target:
        """``target`` with its deadline: ours, or the listener's if that is sooner."""
        due = time.monotonic() + self.deadline
        if target.deadline is not None:
            due = min(due, target.deadline)
        return dataclasses.replace(target, deadline=due)

    def _refusal(self, operation: Operation, target: Target) -> str | None:
        if operation not in GUARDED:
            return None
        if not self._map.allows(target.requester, target.domain):
            return "denied by the static map"
        if self._hooks.has_authorizers:
            return self._hooks.authorize(operation, target, self.listener)
        return None

    async def _carry_out(self, operation: Operation, target: Target) -> tuple[Response, str | None]:
        """The backend's answer, and why it failed if it raised."""
        name = operation.name.lower()
        try:
            if operation is Operation.NULL:
                return Response.FAIL, None
            if operation is Operation.DEVSTATUS:
                return await self._runner.devstatus(target.deadline), None
            return await self._runner.operate(operation, target), None
        except FenceVirtError as exc:
            log.error("%s %s failed: %s", name, target.domain, exc)
            return Response.FAIL, str(exc)
        except asyncio.CancelledError:
            if _being_cancelled():
                raise  # the daemon is stopping: not the backend's answer
            label = self._runner.entry.label
            log.error("%s %s: %s raised CancelledError", name, target.domain, label)
            return Response.FAIL, f"{label} raised CancelledError"
        except Exception as exc:
            log.exception(
                "%s %s: unexpected error in %s", name, target.domain, self._runner.entry.label
            )
            return Response.FAIL, f"{type(exc).__name__}: {exc}"

    async def should_answer(self, operation: Operation, target: Target) -> bool:
        """:meth:`fence_virt.Dispatcher.should_answer`: False only when the backend is
        :class:`fence_virt.Silenceable` and keeps silent about ``target``."""
        backend = self._runner.backend
        if operation not in _LOCATED or not isinstance(backend, Silenceable):
            return True
        try:
            silent = await self._runner.call(backend.keeps_silent, target)
        except Exception as exc:  # noqa: BLE001 - never silent by mistake: answer instead
            log.warning("%s: keeps_silent(%s) failed: %s", self._runner.entry.label, target, exc)
            return True
        if silent is True:
            log.info(
                "%s %s (requester %s, seqno %d, listener %s): not here, no answer "
                "(unknown_vm = silent)",
                operation.name.lower(),
                target.domain,
                target.requester,
                target.seqno,
                self.listener,
            )
            return False
        return True

    async def fence(self, operation: Operation, target: Target) -> Response:
        started, clock = time.time(), time.monotonic()
        if current_request_id() is None:
            begin_request()
        reason = self._refusal(operation, target)
        if reason is not None:
            log.warning(
                "%s %s for %s (listener %s): %s",
                operation.name.lower(),
                target.domain,
                target.requester,
                self.listener,
                reason,
            )
            response = Response.PERM
        else:
            response, reason = await self._carry_out(operation, self._due(target))
        duration = time.monotonic() - clock
        log.info(
            "%s %s (requester %s, seqno %d, listener %s): %s in %.1f ms",
            operation.name.lower(),
            target.domain or "-",
            target.requester,
            target.seqno,
            self.listener,
            response.name.lower(),
            duration * 1000,
            extra=self._fields(operation, target, response.name.lower(), duration),
        )
        self._finished(operation, target, response, started, duration, reason)
        return response

    def _allowed(self, requester: str, state: HostState) -> bool:
        if not self._map.allows(requester, state.uuid, state.domain):
            return False
        if not self._hooks.has_authorizers:
            return True
        target = Target(domain=state.domain, by_uuid=False, requester=requester, seqno=0)
        refusal = self._hooks.authorize(Operation.HOSTLIST, target, self.listener, state)
        return refusal is None

    def _fields(
        self, operation: Operation, target: Target, result: str, duration: float
    ) -> dict[str, object]:
        """The request's summary as record attributes (:data:`fence_virt.tracing.FIELDS`)."""
        return {
            "fv_operation": operation.name.lower(),
            "fv_target": target.domain or "-",
            "fv_requester": target.requester,
            "fv_listener": self.listener,
            "fv_result": result,
            "fv_duration_ms": f"{duration * 1000:.1f}",
        }

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        started, clock = time.time(), time.monotonic()
        if current_request_id() is None:
            begin_request()
        target = Target(domain="", by_uuid=False, requester=requester, seqno=0)
        try:
            states = await self._runner.hostlist(requester, time.monotonic() + self.deadline)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                raise
            if not isinstance(exc, FenceVirtError):
                log.exception("hostlist: unexpected error in %s", self._runner.entry.label)
                exc = BackendError(f"hostlist failed: {type(exc).__name__}: {exc}")
            self._finished(
                Operation.HOSTLIST,
                target,
                Response.FAIL,
                started,
                time.monotonic() - clock,
                str(exc),
            )
            raise exc from None
        allowed = [state for state in states if self._allowed(requester, state)]
        duration = time.monotonic() - clock
        log.info(
            "hostlist for %s (listener %s): %d of %d VMs",
            requester,
            self.listener,
            len(allowed),
            len(states),
            extra=self._fields(Operation.HOSTLIST, target, "success", duration),
        )
        self._finished(Operation.HOSTLIST, target, Response.SUCCESS, started, duration, None)
        return allowed

    def dropped(self, requester: str, kind: DropKind, reason: str) -> None:
        """Schedule the drop observers (:meth:`fence_virt.Dispatcher.dropped`)."""
        if not self._hooks.has_drop_observers:
            return
        record = DroppedRequest(
            listener=self.listener, requester=requester, kind=kind, reason=reason, when=time.time()
        )
        asyncio.get_running_loop().call_soon(self._hooks.request_dropped, record)

    def _finished(
        self,
        operation: Operation,
        target: Target,
        response: Response,
        started: float,
        duration: float,
        reason: str | None,
    ) -> None:
        """Schedule the observers: the listener sends its answer before they run."""
        if not self._hooks.has_observers:
            return
        record = FinishedRequest(
            operation=operation,
            target=target,
            listener=self.listener,
            response=response,
            started=started,
            duration=duration,
            reason=reason,
            request_id=current_request_id(),
        )
        asyncio.get_running_loop().call_soon(self._hooks.request_finished, record)


def _being_cancelled() -> bool:
    """True when the running task itself is being cancelled (a stop), not when a backend
    merely raised CancelledError of its own."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
