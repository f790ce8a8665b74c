"""libvirt's event loop on asyncio (libvirt-python's ``libvirtaio``), safe for worker threads.

libvirt needs an event loop for domain events, close callbacks and keepalives. ``libvirtaio``
runs it on an asyncio loop, but libvirt calls the loop's add/update/remove functions from
whichever thread uses a connection: once an event loop is registered, *every* remote
connection's socket is watched by it, and a worker thread fencing through libvirt updates
that watch twice per RPC. Plain ``libvirtaio`` then touches asyncio from foreign threads,
which asyncio does not allow (debug mode raises; otherwise a timer started from a worker thread
waits until the loop wakes for another reason, so events arrive late or not at all).

:func:`bind_running_loop` registers a relay in front of ``libvirtaio`` instead. Invariants:

* libvirt's event implementation is registered once per process (libvirt-python refuses a
  second registration); the relay is what is registered, and it forwards to a
  ``libvirtaio`` implementation bound to one asyncio loop at a time.
* Every change to ``libvirtaio``'s state runs on that loop's thread, in the order libvirt asked
  for it: another thread queues the change and wakes the loop; the loop's own thread runs the
  queue, then its change, at once.
* Watch and timer numbers are the relay's own and handed out at once to the calling thread;
  ``libvirtaio``'s numbers exist only on the loop thread. Nothing here blocks a thread that
  holds libvirt locks.
* Once the loop is closed, new watches are refused (-1): libvirt then opens connections
  without events and keepalives, as if no event loop were registered. A later loop may bind
  (tests run one loop after another); watches left from the closed loop are dropped, so a user
  of events stops its watches before its loop ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import libvirt
import libvirtaio

from fence_virt.errors import LocalError

__all__ = ["bind_running_loop"]

log = logging.getLogger("fence_virt_libvirt")

#: what libvirt's add/remove functions return for "no such watch" / "cannot watch"
_REFUSED = -1

_Change = Callable[[Any], None]


class _Relay:
    """The six functions libvirt calls, forwarding to a ``libvirtaio`` implementation."""

    def __init__(self) -> None:
        self.registered = False
        self._lock = threading.Lock()
        self._impl: Any = None
        self._loop_thread: int | None = None
        self._queue: deque[tuple[Any, _Change]] = deque()
        self._wake_pending = False
        self._draining = False
        self._numbers = itertools.count(1)
        #: numbers handed out and not removed yet (any thread, under the lock)
        self._live: set[int] = set()
        #: our number -> (implementation, its number); loop thread only
        self._inner: dict[int, tuple[Any, int]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            old = self._impl
            if old is not None and old.loop is loop:
                return
            if old is not None and not old.loop.is_closed():
                raise LocalError(
                    "libvirt events already run on another asyncio loop that is still open "
                    "(libvirt allows one event loop per process)"
                )
            if self._live:
                log.warning(
                    "dropping %d libvirt watches left by a closed asyncio loop: connections "
                    "opened while it ran get no more events",
                    len(self._live),
                )
            self._impl = libvirtaio.virEventAsyncIOImpl(loop=loop)
            self._loop_thread = threading.get_ident()
            self._queue.clear()
            self._wake_pending = False
            self._live.clear()
            self._inner.clear()

    # queueing --------------------------------------------------------------------------------

    def _submit(self, change: _Change, *, adds: int | None = None) -> bool:
        """Run ``change(impl)`` on the loop thread (now, if this is it); False if no open loop."""
        with self._lock:
            impl = self._impl
            if impl is None or impl.loop.is_closed():
                return False
            if adds is not None:
                self._live.add(adds)
            self._queue.append((impl, change))
            here = threading.get_ident() == self._loop_thread
            wake = not here and not self._wake_pending
            if wake:
                self._wake_pending = True
        if here:
            self._drain()
        elif wake:
            try:
                impl.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:
                log.debug("asyncio loop closed; libvirt event change dropped")
        return True

    def _drain(self) -> None:
        if self._draining:
            return  # a change made while running another: the loop below runs it next
        self._draining = True
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._wake_pending = False
                        return
                    impl, change = self._queue.popleft()
                try:
                    change(impl)
                except (KeyError, RuntimeError, OSError, ValueError) as exc:
                    log.warning("libvirt event loop change failed: %r", exc)
        finally:
            self._draining = False

    def _with_inner(
        self, number: int, action: Callable[[Any, int], object], *, last: bool = False
    ) -> _Change:
        """A change applying ``action(impl, its number)`` to our ``number``'s watch or timer
        (nothing if adding it failed or it belonged to a loop since dropped)."""

        def change(impl: Any) -> None:
            found = self._inner.pop(number, None) if last else self._inner.get(number)
            if found is not None and found[0] is impl:
                action(impl, found[1])

        return change

    def _forget(self, number: int) -> bool:
        with self._lock:
            known = number in self._live
            self._live.discard(number)
        return known

    # the six functions libvirt calls -----------------------------------------------------------

    def add_handle(self, fd: int, events: int, cb: Callable[..., None], opaque: object) -> int:
        number = next(self._numbers)

        def relay(_watch: int, fd_: int, events_: int, opaque_: object) -> None:
            cb(number, fd_, events_, opaque_)

        def change(impl: Any) -> None:
            self._inner[number] = (impl, impl._add_handle(fd, events, relay, opaque))

        return number if self._submit(change, adds=number) else _REFUSED

    def update_handle(self, number: int, events: int) -> None:
        self._submit(self._with_inner(number, lambda impl, n: impl._update_handle(n, events)))

    def remove_handle(self, number: int) -> int:
        if not self._forget(number):
            return _REFUSED
        self._submit(self._with_inner(number, lambda impl, n: impl._remove_handle(n), last=True))
        return 0

    def add_timeout(self, timeout: int, cb: Callable[..., None], opaque: object) -> int:
        number = next(self._numbers)

        def relay(_timer: int, opaque_: object) -> None:
            cb(number, opaque_)

        def change(impl: Any) -> None:
            self._inner[number] = (impl, impl._add_timeout(timeout, relay, opaque))

        return number if self._submit(change, adds=number) else _REFUSED

    def update_timeout(self, number: int, timeout: int) -> None:
        self._submit(self._with_inner(number, lambda impl, n: impl._update_timeout(n, timeout)))

    def remove_timeout(self, number: int) -> int:
        if not self._forget(number):
            return _REFUSED
        self._submit(self._with_inner(number, lambda impl, n: impl._remove_timeout(n), last=True))
        return 0


_relay = _Relay()
_register_lock = threading.Lock()


def bind_running_loop() -> None:
    """Run libvirt's event loop on the running asyncio loop, from now on, for this process.

    Call it from a coroutine before opening a connection whose events you want: libvirt
    decides at open time whether a connection is watched. Calling it again on the same loop
    does nothing. Connections opened afterwards in any thread are watched too (libvirtd's
    keepalives are answered for them); that is safe, see the module's invariants.

    :raises RuntimeError: no asyncio loop is running in this thread.
    :raises LocalError: another asyncio loop that is still open runs libvirt's events, or an
        event implementation other than this module's was registered in this process.
    """
    loop = asyncio.get_running_loop()
    with _register_lock:
        if not _relay.registered:
            try:
                libvirt.virEventRegisterImpl(
                    _relay.add_handle,
                    _relay.update_handle,
                    _relay.remove_handle,
                    _relay.add_timeout,
                    _relay.update_timeout,
                    _relay.remove_timeout,
                )
            except RuntimeError as exc:
                raise LocalError(f"cannot run libvirt events on asyncio: {exc}") from exc
            _relay.registered = True
        _relay.bind(loop)
