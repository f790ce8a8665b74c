"""One CPG group on the running asyncio loop: join, multicast, membership, reconnect.

* **Dispatch from the fd.** ``cpg_fd_get``'s descriptor is registered with
  ``loop.add_reader``; when it turns readable the loop runs ``cpg_dispatch(CS_DISPATCH_ALL)``,
  which runs the callbacks right there, on the loop thread. No dispatch thread exists, so the
  C start-up race (its thread dispatching a handle not yet stored, recipes §5d) cannot happen.
* **Start-up has no race.** :meth:`CpgGroup.start` returns only once corosync delivered the
  configuration change that lists this process as a member: from then on every message sent
  to the group reaches us too.
* **Flow control.** ``CS_ERR_TRY_AGAIN`` from join or multicast is retried with a doubling
  pause (1 ms up to 100 ms) until the caller's deadline.
* **corosync restarts.** A dispatch or multicast that reports the connection lost removes
  the reader, finalizes the handle and reconnects every ``retry_interval`` seconds; after each
  reconnect ``on_reconnected`` runs. Messages sent meanwhile fail at once.
* **Stop.** :meth:`CpgGroup.stop` leaves the group and finalizes the handle (fence_virtd calls
  it on SIGTERM), so the other members see a clean LEAVE, not a process that vanished.

Every libcpg call is made on the loop thread: a process in a network namespace reaches the
corosync of that namespace (its IPC uses abstract UNIX sockets), and the loop's thread is
the one the caller placed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from fence_virt.errors import BackendError
from fence_virt_backend_cpg.libcpg import CpgAddress, CpgError, CpgHandle

__all__ = ["CpgGroup", "Membership"]

log = logging.getLogger("fence_virt_backend_cpg")

_FIRST_PAUSE = 0.001
_MAX_PAUSE = 0.1

#: (members, left, joined) of one configuration change
Membership = tuple[list[CpgAddress], list[CpgAddress], list[CpgAddress]]


class CpgGroup:
    """Membership of the CPG group ``name`` for this process, driven by the running loop.

    :param on_message: ``(nodeid, pid, bytes)`` for every message delivered, ours included,
        in corosync's agreed order; runs on the loop thread and must not block.
    :param on_membership: ``(members, left, joined)`` for every configuration change.
    :param on_reconnected: called after a reconnect (not after the first connect).
    :param retry_interval: seconds between reconnect attempts.
    :param join_timeout: seconds :meth:`start` (and each reconnect) waits for our own join.
    """

    def __init__(
        self,
        name: str,
        *,
        on_message: Callable[[int, int, bytes], None],
        on_membership: Callable[[list[CpgAddress], list[CpgAddress], list[CpgAddress]], None],
        on_reconnected: Callable[[], None] | None = None,
        retry_interval: float = 2.0,
        join_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.pid = os.getpid()
        self.nodeid: int | None = None
        self._on_message = on_message
        self._on_membership = on_membership
        self._on_reconnected = on_reconnected
        self._retry_interval = retry_interval
        self._join_timeout = join_timeout
        self._handle: CpgHandle | None = None
        self._fd: int | None = None
        self._joined: asyncio.Event | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def connected(self) -> bool:
        """Joined and not known to have lost corosync."""
        return self._handle is not None and self._joined is not None and self._joined.is_set()

    def describe(self) -> str:
        return f"CPG group {self.name}"

    async def start(self) -> None:
        """Connect, join, and return once corosync lists this process in the group.

        :raises BackendError: corosync is not running here, refuses us, or does not confirm
            the join within ``join_timeout`` seconds.
        """
        self._stopping = False
        await self._connect()

    async def stop(self) -> None:
        """Leave the group and finalize; idempotent. No callback runs after it returns."""
        self._stopping = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        handle = self._handle
        if handle is not None:
            try:
                handle.leave()
            except CpgError as exc:
                log.debug("leaving %s: %s", self.name, exc)
        self._drop()

    async def send(self, message: bytes, timeout: float) -> None:
        """Multicast ``message`` to the group with agreed ordering.

        :raises BackendError: not connected, the connection broke, or corosync kept
            answering ``CS_ERR_TRY_AGAIN`` for ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        pause = _FIRST_PAUSE
        while True:
            handle = self._handle
            if handle is None or not self.connected:
                raise BackendError(f"not connected to corosync ({self.describe()})")
            try:
                handle.mcast(message)
                return
            except CpgError as exc:
                if exc.connection_lost:
                    self._lost(exc)
                    raise
                if not exc.try_again or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    # connecting ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        handle = CpgHandle(self._deliver, self._confchg)
        self._joined = asyncio.Event()
        handle.initialize()
        self._handle = handle
        try:
            self.nodeid = handle.local_nodeid()
            await self._join(handle)
            self._fd = handle.fd()
            asyncio.get_running_loop().add_reader(self._fd, self._readable)
            async with asyncio.timeout(self._join_timeout):
                await self._joined.wait()
        except TimeoutError:
            self._drop()
            raise BackendError(
                f"corosync did not confirm our join of {self.name} within {self._join_timeout:g} s"
            ) from None
        except BaseException:
            self._drop()
            raise
        log.info("joined %s as node %d (pid %d)", self.describe(), self.nodeid, self.pid)

    async def _join(self, handle: CpgHandle) -> None:
        deadline = time.monotonic() + self._join_timeout
        pause = _FIRST_PAUSE
        while True:
            try:
                handle.join(self.name)
                return
            except CpgError as exc:
                if not exc.try_again or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    def _drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.finalize()
        if self._joined is not None:
            self._joined.clear()

    # events on the loop ----------------------------------------------------------------------

    def _readable(self) -> None:
        handle = self._handle
        if handle is None:
            return
        try:
            handle.dispatch()
        except CpgError as exc:
            if not exc.try_again:
                self._lost(exc)

    def _lost(self, why: CpgError) -> None:
        if self._handle is None or self._stopping:
            return
        log.error("lost corosync (%s); leaving %s and reconnecting", why, self.name)
        self._drop()
        if self._reconnect_task is None:
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(), name=f"reconnect {self.describe()}"
            )

    async def _reconnect(self) -> None:
        lost_at = time.monotonic()
        failures = 0
        try:
            while not self._stopping:
                await asyncio.sleep(self._retry_interval)
                try:
                    await self._connect()
                except BackendError as exc:
                    failures += 1
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(level, "reconnecting to corosync: %s", exc)
                    continue
                log.info(
                    "back in %s after %.1f s without corosync",
                    self.name,
                    time.monotonic() - lost_at,
                )
                if self._on_reconnected is not None:
                    self._on_reconnected()
                return
        finally:
            self._reconnect_task = None

    def _deliver(self, nodeid: int, pid: int, message: bytes) -> None:
        self._on_message(nodeid, pid, message)

    def _confchg(
        self, members: list[CpgAddress], left: list[CpgAddress], joined: list[CpgAddress]
    ) -> None:
        if any(m.nodeid == self.nodeid and m.pid == self.pid for m in members):
            assert self._joined is not None
            self._joined.set()
        self._on_membership(members, left, joined)
