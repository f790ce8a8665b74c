"""From a listener's request to the backend and back: permissions, per-VM order, threads.

Invariants:
* operations on the same VM (by case-insensitive name or UUID text) run one at a time, in
  arrival order; operations on different VMs run concurrently in the worker pool;
* a backend failure of any kind becomes ``Response.FAIL`` for that request and a log line;
  it never propagates into the listener (the daemon never dies from one request);
* status/on/off/reboot are checked against the static map (C: null and devstatus are not).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, FenceVirtError
from fence_virt.plugins import PluginHooks
from fence_virt.protocol import HostState, Operation, Response
from fence_virt.types import Target

__all__ = ["BackendDispatcher", "KeyedLocks"]

log = logging.getLogger("fence_virt.dispatch")

_T = TypeVar("_T")

#: operations the static map guards (c-suite-spec §5.8)
_CHECKED = frozenset({Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS})


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class BackendDispatcher:
    """Implements :class:`fence_virt.types.Dispatcher` over the plugin facade."""

    def __init__(
        self, hooks: PluginHooks, static_map: StaticMap, executor: ThreadPoolExecutor
    ) -> None:
        self._hooks = hooks
        self._map = static_map
        self._executor = executor
        self._locks = KeyedLocks()

    async def _in_thread(self, func: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def fence(self, operation: Operation, target: Target) -> Response:
        if operation in _CHECKED and not self._map.allows(target.requester, target.domain):
            log.warning(
                "%s %s denied for %s by the static map",
                operation.name.lower(),
                target.domain,
                target.requester,
            )
            return Response.PERM
        started = time.monotonic()
        try:
            if operation is Operation.DEVSTATUS:
                response = await self._in_thread(self._hooks.backend_devstatus)
            else:
                async with self._locks.hold(target.domain.casefold()):
                    response = await self._in_thread(
                        self._hooks.backend_operation, operation, target
                    )
        except FenceVirtError as exc:
            log.error("%s %s failed: %s", operation.name.lower(), target.domain, exc)
            return Response.FAIL
        except Exception:
            log.exception("%s %s: unexpected backend error", operation.name.lower(), target.domain)
            return Response.FAIL
        log.info(
            "%s %s (requester %s, seqno %d): %s in %.1f ms",
            operation.name.lower(),
            target.domain or "-",
            target.requester,
            target.seqno,
            response.name.lower(),
            (time.monotonic() - started) * 1000,
        )
        return response

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        try:
            states = await self._in_thread(self._hooks.backend_hostlist, requester)
        except FenceVirtError:
            raise
        except Exception as exc:
            log.exception("hostlist: unexpected backend error")
            raise BackendError(f"hostlist failed: {type(exc).__name__}: {exc}") from exc
        allowed = [s for s in states if self._map.allows(requester, s.uuid, s.domain)]
        log.info("hostlist for %s: %d of %d VMs", requester, len(allowed), len(states))
        return allowed
