"""What a backend whose hosts share VM locations (cpg, amqp) has around its transport.

Such a backend carries each request to the host that runs the VM and fences its own VMs
through :class:`~fence_virt_libvirt.localvms.LocalVms`. How a request travels differs (a
CPG group, a broker); the rest is the same and lives here once:

* the four fencing operations all go to the subclass's ``_request``;
* ``hostlist`` is this host's VMs only (as C's cpg backend lists them);
* ``devstatus`` is FAIL while the transport is down (the subclass says why), else the
  local hypervisors' answer;
* ``stop`` ends the local watches, then the transport, cancels the tasks started for
  other hosts' requests (:meth:`HostClusterBackend._spawn`) and fails every request still
  waiting for an answer, then closes the local fencer -- in that order, so nothing
  re-publishes or answers after the transport is gone.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Hashable, Sequence
from typing import Any, Generic, TypeVar

from fence_virt import Target
from fence_virt.protocol import HostState, Operation, Response
from fence_virt_libvirt.localvms import LocalVms
from fence_virt_libvirt.operations import Fencer

__all__ = ["HostClusterBackend"]

#: how a backend names a request waiting for another host's answer (a seqno, an id)
RequestId = TypeVar("RequestId", bound=Hashable)


class HostClusterBackend(ABC, Generic[RequestId]):
    """The shared part of a :class:`fence_virt.Backend` over a host cluster.

    :param local: this host's VMs (the subclass builds it, with its publish callback).
    :param log: the plugin's logger (messages keep the plugin's name).
    """

    def __init__(self, local: LocalVms, log: logging.Logger) -> None:
        self._local = local
        self._log = log
        #: answers awaited from other hosts, by request id; each fails on :meth:`stop`
        self._waiting: dict[RequestId, asyncio.Future[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # the subclass's transport -----------------------------------------------------------------

    @abstractmethod
    async def _request(self, operation: Operation, target: Target) -> Response:
        """Carry ``operation`` out on ``target`` wherever it runs (this host is the requester).

        :raises fence_virt.errors.BackendError: nobody answered, or the transport failed.
        """

    @abstractmethod
    async def _disconnect(self) -> None:
        """Leave the transport (group, broker); nothing is received afterwards."""

    @abstractmethod
    def _transport_problem(self) -> str | None:
        """Why requests cannot travel now (one line), or ``None`` when they can."""

    # fence_virt.Backend -----------------------------------------------------------------------

    async def off(self, target: Target) -> Response:
        return await self._request(Operation.OFF, target)

    async def on(self, target: Target) -> Response:
        return await self._request(Operation.ON, target)

    async def reboot(self, target: Target) -> Response:
        return await self._request(Operation.REBOOT, target)

    async def status(self, target: Target) -> Response:
        return await self._request(Operation.STATUS, target)

    async def devstatus(self) -> Response:
        """SUCCESS when the transport is up and every local hypervisor answers."""
        problem = self._transport_problem()
        if problem is not None:
            self._log.error("monitor: %s", problem)
            return Response.FAIL
        return await asyncio.to_thread(self._running().devstatus)

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        """This host's VMs only, as C's cpg backend lists them."""
        del requester
        return await asyncio.to_thread(self._running().hostlist)

    async def stop(self) -> None:
        """Stop watching libvirt, leave the transport, fail requests still waiting."""
        await self._local.stop()
        await self._disconnect()
        for task in list(self._tasks):
            task.cancel()
        for waiter in self._waiting.values():
            waiter.cancel()
        await self._local.close()

    # helpers for the subclass -----------------------------------------------------------------

    def _running(self) -> Fencer:
        """The local fencer (:raises LocalError: before start or after stop)."""
        return self._local.fencer

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` (another host's request) as a task that :meth:`stop` cancels; its
        exception, if any, is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("handling another host's request failed", exc_info=task.exception())
