"""Never a false success: an exception of any kind from a backend plugin -- not only the
documented BackendError -- is FAIL on the wire, for every operation and for host lists, with
one log line naming the plugin and the observers told (issue: "an unexpected exception from
a plugin turned into success passes every test").

The answer is checked as the client receives it: the bytes :func:`fence_virt.listening.answer`
encodes for a verified request, through the real :class:`RequestDispatcher`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from fence_virt import Availability, FinishedRequest, Target, hookimpl
from fence_virt.daemon.dispatch import BackendRunner, RequestDispatcher
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError
from fence_virt.listening import answer
from fence_virt.plugins import PluginEntry, PluginHooks, PluginKind, build_plugin_manager
from fence_virt.protocol import FenceRequest, HashType, HostState, Operation, Response

#: exceptions a buggy plugin raises; none is a FenceVirtError
UNEXPECTED = [
    KeyError("vm1"),
    RuntimeError("session expired"),
    ZeroDivisionError("division by zero"),
    AssertionError("invariant broken"),
    OSError(104, "Connection reset by peer"),
]
VM_OPERATIONS = [Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS]


class RaisingBackend:
    """Every method raises ``error``; ``asynchronous`` makes off and hostlist coroutines."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls: list[str] = []

    def describe(self) -> str:
        return "raising test backend"

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def _raise(self, name: str) -> Response:
        self.calls.append(name)
        raise self.error

    def off(self, target: Target) -> Response:
        return self._raise("off")

    def on(self, target: Target) -> Response:
        return self._raise("on")

    def reboot(self, target: Target) -> Response:
        return self._raise("reboot")

    def status(self, target: Target) -> Response:
        return self._raise("status")

    def devstatus(self) -> Response:
        return self._raise("devstatus")

    def hostlist(self, requester: str) -> Sequence[HostState]:
        self._raise("hostlist")
        return []


class AsyncRaisingBackend(RaisingBackend):
    async def off(self, target: Target) -> Response:  # type: ignore[override]
        return self._raise("off")

    async def hostlist(self, requester: str) -> Sequence[HostState]:  # type: ignore[override]
        self._raise("hostlist")
        return []


class Plugin:
    def __init__(self, backend: object) -> None:
        self.backend = backend

    @hookimpl
    def fence_virt_backend_check(self) -> Availability:
        return Availability.yes("test")

    @hookimpl
    def fence_virt_backend_create(self) -> object:
        return self.backend


class Recorder:
    def __init__(self) -> None:
        self.seen: list[FinishedRequest] = []

    @hookimpl
    def fence_virt_request_finished(self, request: FinishedRequest) -> None:
        self.seen.append(request)


def entry(obj: object, name: str, kind: PluginKind) -> PluginEntry:
    return PluginEntry(
        kind=kind,
        name=name,
        target=f"tests:{name}",
        distribution=f"{name}-dist",
        version="0",
        obj=obj,
    )


def dispatcher_for(backend: object, recorder: Recorder) -> RequestDispatcher:
    main = entry(Plugin(backend), "raising", PluginKind.BACKEND)
    entries = [main, entry(recorder, "recorder", PluginKind.EXTENSION)]
    hooks = PluginHooks(build_plugin_manager(entries), entries)
    runner = BackendRunner(backend, main, ThreadPoolExecutor(max_workers=4))  # type: ignore[arg-type]
    return RequestDispatcher(runner, hooks, "test-listener", StaticMap())


def on_the_wire(dispatcher: RequestDispatcher, operation: Operation, domain: str) -> bytes:
    request = FenceRequest.build(operation, domain, hashtype=HashType.SHA256, seqno=7)

    async def main() -> bytes:
        reply = await answer(request, "198.51.100.11", dispatcher)
        await asyncio.sleep(0)  # observers run right after the answer
        return reply

    return asyncio.run(main())


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("operation", [*VM_OPERATIONS, Operation.DEVSTATUS])
def test_an_unexpected_exception_is_fail_on_the_wire(
    operation: Operation, error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    backend = RaisingBackend(error)
    reply = on_the_wire(dispatcher_for(backend, recorder), operation, "vm1")
    assert reply == bytes([Response.FAIL])
    assert backend.calls == [operation.name.lower()]
    assert f"{operation.name.lower()} vm1: unexpected error in fence_virt.backends:raising" in (
        caplog.text
    )
    assert [(r.operation, r.response) for r in recorder.seen] == [(operation, Response.FAIL)]
    assert recorder.seen[0].reason == f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("backend_type", [RaisingBackend, AsyncRaisingBackend])
def test_an_unexpected_exception_from_hostlist_is_a_failed_list(
    backend_type: type[RaisingBackend], error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    """A list answers FAIL alone (no 0xFD, no rows): the C agent then exits 1."""
    recorder = Recorder()
    dispatcher = dispatcher_for(backend_type(error), recorder)
    assert on_the_wire(dispatcher, Operation.HOSTLIST, "") == bytes([Response.FAIL])
    with pytest.raises(BackendError, match=f"hostlist failed: {type(error).__name__}"):
        asyncio.run(dispatcher.hostlist("198.51.100.11"))
    assert "hostlist: unexpected error in fence_virt.backends:raising" in caplog.text
    assert [r.response for r in recorder.seen] == [Response.FAIL, Response.FAIL]


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
def test_an_unexpected_exception_from_an_async_operation_is_fail(error: BaseException) -> None:
    recorder = Recorder()
    reply = on_the_wire(dispatcher_for(AsyncRaisingBackend(error), recorder), Operation.OFF, "vm1")
    assert reply == bytes([Response.FAIL])
