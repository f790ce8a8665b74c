"""The daemon's asyncio runtime: start the backend, start the listener, wait, stop cleanly.

This module knows nothing of wire formats; listeners own their sockets and protocols and
reach the backend only through :class:`~fence_virt.daemon.dispatch.BackendDispatcher`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.daemon.dispatch import BackendDispatcher
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, UserError
from fence_virt.plugins import PluginHooks
from fence_virt.types import Listener

__all__ = ["BACKEND_RETRY_SECONDS", "MAX_WORKERS", "DaemonRun", "run_daemon"]

log = logging.getLogger("fence_virt.daemon")

#: C's -w retries initialisation every 5 s (main.c)
BACKEND_RETRY_SECONDS = 5.0
#: worker threads for backend calls: one per VM being fenced at once, generously bounded
MAX_WORKERS = 64


@dataclass(frozen=True)
class DaemonRun:
    """Everything the runtime needs, prepared (and validated) before any socket is opened."""

    hooks: PluginHooks
    listener: Listener
    listener_name: str
    backend_name: str
    backend_section: ConfigNode | None
    config: ConfigTree
    static_map: StaticMap
    wait_for_backend: bool


async def _start_backend(run: DaemonRun, executor: ThreadPoolExecutor, stop: asyncio.Event) -> bool:
    loop = asyncio.get_running_loop()
    while True:
        try:
            await loop.run_in_executor(
                executor, run.hooks.backend_start, run.backend_section, run.config
            )
        except BackendError as exc:
            if not run.wait_for_backend:
                raise
            log.warning(
                "backend %s failed to start (%s); retrying in %.0f s",
                run.backend_name,
                exc,
                BACKEND_RETRY_SECONDS,
            )
            try:
                await asyncio.wait_for(stop.wait(), BACKEND_RETRY_SECONDS)
            except TimeoutError:
                continue
            return False
        else:
            return True


async def run_daemon(run: DaemonRun, *, ready: Callable[[], None] = lambda: None) -> None:
    """Serve until SIGTERM or SIGINT; raise if start-up fails (after releasing what started)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="backend") as executor:
        if not await _start_backend(run, executor, stop):
            return
        try:
            dispatcher = BackendDispatcher(run.hooks, run.static_map, executor)
            try:
                await run.listener.start(dispatcher)
            except OSError as exc:
                where = f"{run.listener_name} ({run.listener.describe()})"
                raise UserError(f"listener {where} failed to start: {exc}") from exc
            try:
                log.info(
                    "fence_virtd started: listener %s (%s), backend %s",
                    run.listener_name,
                    run.listener.describe(),
                    run.backend_name,
                )
                ready()
                await stop.wait()
                log.info("fence_virtd shutting down")
            finally:
                await run.listener.stop()
        finally:
            await loop.run_in_executor(executor, run.hooks.backend_stop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
