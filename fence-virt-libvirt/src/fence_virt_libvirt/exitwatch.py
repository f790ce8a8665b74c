"""Off at the speed of the VM's death: the QEMU process of a local domain is found before the
destroy, and the copy counts as off once that process has exited, while libvirt's destroy
(about 1.6 s of clean-up after the process is gone) finishes in a background thread.

Used by :class:`~fence_virt_libvirt.Fencer` for the URIs it was given a pid directory for
(:func:`~fence_virt_libvirt.qemuproc.qemu_pid_dir`); any doubt -- a URI without one, a
domain whose devices may outlive the process (:func:`~fence_virt_libvirt.fencepoint.outliving`),
a pid that cannot be tied to the domain -- leaves the copy to libvirt's own answer. Why an
exited QEMU process is a safe fencing point: ``docs/fencing-point.md``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from fence_virt.errors import BackendError
from fence_virt_libvirt.domains import Located, domain_xml
from fence_virt_libvirt.fencepoint import outliving
from fence_virt_libvirt.qemuproc import QemuProcess, find_qemu

__all__ = ["BackgroundJobs", "ExitWatch", "wait_for_exit"]

log = logging.getLogger("fence_virt_libvirt")

_T = TypeVar("_T")

#: seconds between looks at the destroy while waiting for the exit (the exit itself wakes the
#: wait at once; this only bounds how late a failed destroy is noticed)
_SLICE = 0.02


class ExitWatch:
    """Which copies may be answered off at their QEMU process's exit.

    ``pid_dirs``: URI -> directory of libvirt's ``<name>.pid`` files, for the URIs whose QEMU
    processes run on this host.
    """

    def __init__(self, pid_dirs: Mapping[str, Path]) -> None:
        self.pid_dirs = dict(pid_dirs)

    def process_of(self, copy: Located) -> QemuProcess | None:
        """``copy``'s QEMU process, tied to it; ``None`` (logged, with the reason) when its off
        must wait for libvirt instead. :class:`BackendError` if the URI cannot answer."""
        pid_dir = self.pid_dirs.get(copy.hypervisor.uri)
        if pid_dir is None:
            return None
        xml = domain_xml(copy.hypervisor, copy.uuid)
        doubts = ["it is no longer defined"] if xml is None else outliving(xml)
        if doubts:
            log.info("VM %s: off waits for libvirt: %s", copy, "; ".join(doubts))
            return None
        found = find_qemu(pid_dir, copy.name, copy.uuid)
        if isinstance(found, str):
            log.info("VM %s: off waits for libvirt: %s", copy, found)
            return None
        return found


def wait_for_exit(
    copy: Located, process: QemuProcess, destroy: Future[Any], give_up: float, late: str
) -> None:
    """Return once ``process`` has exited; the destroy started for it runs on.

    :param give_up: ``time.monotonic()`` seconds; ``late`` says what it is in the error.
    :raises BackendError: the destroy failed while the process still ran, or ``give_up``
        came first.
    """
    while not process.wait(max(0.0, min(_SLICE, give_up - time.monotonic()))):
        if destroy.done() and destroy.exception() is not None and not process.exited():
            raise BackendError(f"destroying VM {copy} failed: {destroy.exception()}")
        if time.monotonic() >= give_up:
            raise BackendError(f"VM {copy}: its {process} still ran{late}")


class BackgroundJobs:
    """Threads that go on after a request was answered (a destroy, a reboot's power-on);
    :meth:`wait` for them before closing the connections they use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[Future[Any]] = set()

    def start(self, what: str, action: Callable[..., _T], *args: object) -> Future[_T]:
        """Run ``action(*args)`` in a new thread named ``what``; its future."""
        future: Future[_T] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)

        def run() -> None:
            try:
                future.set_result(action(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future
                future.set_exception(exc)

        threading.Thread(target=run, name=what, daemon=True).start()
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)

    def wait(self, timeout: float) -> int:
        """Block up to ``timeout`` seconds until every job has ended; how many still run."""
        give_up = time.monotonic() + timeout
        while True:
            with self._lock:
                running = list(self._running)
            if not running:
                return 0
            left = give_up - time.monotonic()
            if left <= 0:
                return len(running)
            concurrent.futures.wait(running, timeout=left)
