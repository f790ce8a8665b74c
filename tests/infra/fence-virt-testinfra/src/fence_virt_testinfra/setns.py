"""Python code inside a test's network namespace: a thread that entered it with setns(2).

A network namespace belongs to a thread, and a socket keeps the namespace it was made in, so
code run by :func:`in_netns` or on a :class:`NetnsLoop` binds, joins groups and connects only
inside the namespace (made by :func:`fence_virt_testinfra.netns.netns`), never on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from fence_virt_testinfra.netns import NetNS

__all__ = ["NetnsLoop", "enter_netns", "in_netns"]

T = TypeVar("T")

#: <linux/sched.h>: the namespace type setns(2) is asked to join
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling thread into namespace ``name``; OSError if the kernel refuses."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(ns: NetNS, func: Callable[[], T]) -> T:
    """Run ``func`` on a fresh thread inside ``ns``; return its result or raise its error."""
    result: Future[T] = Future()

    def body() -> None:
        try:
            enter_netns(ns.name)
            result.set_result(func())
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            result.set_exception(exc)

    thread = threading.Thread(target=body, name=f"in-{ns.name}")
    thread.start()
    thread.join()
    return result.result()


class NetnsLoop:
    """An asyncio event loop on a thread inside ``ns``; ``run`` waits for a coroutine.

    ``close`` cancels what still runs on the loop, stops it and joins the thread.
    """

    def __init__(self, ns: NetNS) -> None:
        self.ns = ns
        self.loop = asyncio.new_event_loop()
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name=ns.name)
        self._thread.start()
        started.result(10)

    def _main(self, started: Future[None]) -> None:
        try:
            enter_netns(self.ns.name)
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            started.set_exception(exc)
            return
        asyncio.set_event_loop(self.loop)
        started.set_result(None)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the loop; its result, or TimeoutError after ``timeout`` seconds."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
