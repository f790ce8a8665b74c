"""BackendRunner and RequestDispatcher: permissions, per-VM serialization, concurrency across
VMs, threads or the loop, failures turned into FAIL, authorization plugins and observers.

Uses a real pluggy manager with small inline plugins (the pluggy manner)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fence_virt import Availability, FinishedRequest, Target, hookimpl
from fence_virt.config import ConfigSection, ConfigTree, parse_text
from fence_virt.daemon.dispatch import BackendRunner, KeyedLocks, RequestDispatcher
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, PluginError
from fence_virt.plugins import PluginEntry, PluginHooks, PluginKind, build_plugin_manager
from fence_virt.protocol import HostState, Operation, Response

#: VMs whose every operation answers this code
CODES = {"hostlist-code": Response.HOSTLIST, "perm-code": Response.PERM, "off-code": Response.OFF}

VMS = [
    HostState(domain="vm1", uuid="11111111-1111-1111-1111-111111111111", state=1),
    HostState(domain="vm3", uuid="33333333-3333-3333-3333-333333333333", state=5),
]


class SlowBackend:
    """Records overlapping calls per VM; 'boom' raises, 'garbage' and 'false' return bad values."""

    def __init__(self) -> None:
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.max_total = 0
        self.calls: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def describe(self) -> str:
        return "slow test backend"

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def _op(self, name: str, target: Target) -> Any:
        self.threads.add(threading.current_thread().name)
        self.calls.append((name, target.domain))
        if target.domain == "boom":
            raise BackendError("hypervisor unreachable")
        if target.domain == "bug":
            raise KeyError("a bug in the plugin")
        if target.domain == "garbage":
            return 42
        if target.domain == "false":
            return False  # == 0 == SUCCESS: must not be read as success
        if target.domain in CODES:
            return CODES[target.domain]
        with self.lock:
            self.active[target.domain] = self.active.get(target.domain, 0) + 1
            self.max_active[target.domain] = max(
                self.max_active.get(target.domain, 0), self.active[target.domain]
            )
            self.max_total = max(self.max_total, sum(self.active.values()))
        time.sleep(0.05)
        with self.lock:
            self.active[target.domain] -= 1
        return Response.SUCCESS

    def off(self, target: Target) -> Any:
        return self._op("off", target)

    def on(self, target: Target) -> Any:
        return self._op("on", target)

    def reboot(self, target: Target) -> Any:
        return self._op("reboot", target)

    def status(self, target: Target) -> Any:
        return self._op("status", target)

    def devstatus(self) -> Response:
        return Response.SUCCESS

    def hostlist(self, requester: str) -> Sequence[HostState]:
        del requester
        return VMS


class AsyncBackend(SlowBackend):
    """Every method a coroutine: run on the event loop, never in a worker thread."""

    async def off(self, target: Target) -> Any:  # type: ignore[override]
        self.threads.add(threading.current_thread().name)
        await asyncio.sleep(0)
        return Response.SUCCESS if target.domain != "boom" else Response.FAIL

    async def hostlist(self, requester: str) -> Sequence[HostState]:  # type: ignore[override]
        del requester
        raise RuntimeError("bus down")


class LeakyBackend(SlowBackend):
    """A plain def that returns a coroutine: an authoring error core must catch."""

    def off(self, target: Target) -> Any:
        async def late() -> Response:
            return Response.SUCCESS

        return late()


class BackendPlugin:
    """The plugin object wrapping one backend object."""

    def __init__(self, backend: object) -> None:
        self.backend = backend

    @hookimpl
    def fence_virt_backend_check(self) -> Availability:
        return Availability.yes("test")

    @hookimpl
    def fence_virt_backend_create(self) -> object:
        return self.backend


class Denier:
    """Authorization plugin refusing 'vm2' and host-list rows of 'vm3'."""

    @hookimpl
    def fence_virt_authorize(self, target: Target, vm: HostState | None) -> bool | None:
        name = vm.domain if vm is not None else target.domain
        return False if name in ("vm2", "vm3") else None


class Crasher:
    """Authorization plugin that raises for 'vm4' (must fail closed) and says yes otherwise."""

    @hookimpl
    def fence_virt_authorize(self, target: Target) -> bool:
        if target.domain == "vm4":
            raise RuntimeError("policy store unreachable")
        return True


class Recorder:
    def __init__(self) -> None:
        self.seen: list[FinishedRequest] = []

    @hookimpl
    def fence_virt_request_finished(self, request: FinishedRequest) -> None:
        self.seen.append(request)


class BrokenObserver:
    @hookimpl
    def fence_virt_request_finished(self) -> None:
        raise RuntimeError("metrics server down")


def entry(obj: object, name: str, kind: PluginKind = PluginKind.BACKEND) -> PluginEntry:
    """An entry for an in-test plugin object, as discovery would produce it."""
    return PluginEntry(
        kind=kind,
        name=name,
        target=f"tests:{name}",
        distribution=f"{name}-dist",
        version="0",
        obj=obj,
    )


def make_dispatcher(
    backend: object, config: str = "", extensions: Sequence[object] = ()
) -> RequestDispatcher:
    main = entry(BackendPlugin(backend), "slow")
    entries = [main] + [
        entry(ext, f"ext{i}", PluginKind.EXTENSION) for i, ext in enumerate(extensions)
    ]
    hooks = PluginHooks(build_plugin_manager(entries), entries)
    runner = BackendRunner(backend, main, ThreadPoolExecutor(max_workers=8))  # type: ignore[arg-type]
    smap = StaticMap.from_config(parse_text(config)) if config else StaticMap()
    return RequestDispatcher(runner, hooks, "test-listener", smap)


def target(domain: str, requester: str = "198.51.100.11") -> Target:
    return Target(domain=domain, by_uuid=False, requester=requester, seqno=1)


def fence(dispatcher: RequestDispatcher, operation: Operation, domain: str, **kw: str) -> Response:
    return asyncio.run(dispatcher.fence(operation, target(domain, **kw)))


def test_same_vm_serialized_other_vms_concurrent() -> None:
    backend = SlowBackend()
    dispatcher = make_dispatcher(backend)

    async def main() -> list[Response]:
        calls = [
            dispatcher.fence(Operation.REBOOT, target(vm))
            for vm in ["vm1", "VM1", "vm1", "vm2", "vm3"]
        ]
        return await asyncio.gather(*calls)

    assert asyncio.run(main()) == [Response.SUCCESS] * 5
    assert backend.max_active == {"vm1": 1, "VM1": 1, "vm2": 1, "vm3": 1}
    assert backend.max_total >= 2


@pytest.mark.parametrize(
    "domain", ["boom", "bug", "garbage", "false", "hostlist-code", "perm-code", "off-code"]
)
@pytest.mark.parametrize("operation", [Operation.OFF, Operation.ON, Operation.REBOOT])
def test_backend_errors_and_bad_values_become_fail(operation: Operation, domain: str) -> None:
    """0xFD from an off would make the C agent read a host list and exit 0: a false success."""
    dispatcher = make_dispatcher(SlowBackend())
    assert fence(dispatcher, operation, domain) is Response.FAIL


@pytest.mark.parametrize(
    ("domain", "expected"),
    [("off-code", Response.OFF), ("perm-code", Response.FAIL), ("hostlist-code", Response.FAIL)],
)
def test_status_may_answer_off_and_nothing_stranger(domain: str, expected: Response) -> None:
    assert fence(make_dispatcher(SlowBackend()), Operation.STATUS, domain) is expected


def test_each_operation_reaches_its_own_method() -> None:
    backend = SlowBackend()
    dispatcher = make_dispatcher(backend)
    for operation in (Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS):
        assert fence(dispatcher, operation, "vm1") is Response.SUCCESS
    assert backend.calls == [("off", "vm1"), ("on", "vm1"), ("reboot", "vm1"), ("status", "vm1")]


def test_null_is_answered_fail_without_the_backend() -> None:
    backend = SlowBackend()
    assert fence(make_dispatcher(backend), Operation.NULL, "vm1") is Response.FAIL
    assert backend.calls == []


@pytest.mark.parametrize(
    "operation", [Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS]
)
def test_static_map_guards_every_vm_operation(operation: Operation) -> None:
    config = 'groups { group { ip = "198.51.100.11"; uuid = "vm1"; } }'
    backend = SlowBackend()
    dispatcher = make_dispatcher(backend, config)
    assert fence(dispatcher, operation, "vm1") is Response.SUCCESS
    assert fence(dispatcher, operation, "vm3") is Response.PERM
    assert fence(dispatcher, operation, "vm1", requester="198.51.100.99") is Response.PERM
    assert backend.calls == [(operation.name.lower(), "vm1")]


def test_static_map_leaves_null_and_devstatus_and_filters_lists() -> None:
    config = 'groups { group { ip = "198.51.100.11"; uuid = "vm1"; } }'
    dispatcher = make_dispatcher(SlowBackend(), config)
    # null and devstatus are not permission-checked (as in C)
    assert fence(dispatcher, Operation.NULL, "vm3") is Response.FAIL
    assert fence(dispatcher, Operation.DEVSTATUS, "") is Response.SUCCESS
    names = [s.domain for s in asyncio.run(dispatcher.hostlist("198.51.100.11"))]
    assert names == ["vm1"]


def test_async_methods_run_on_the_loop_plain_ones_in_workers() -> None:
    backend = AsyncBackend()
    dispatcher = make_dispatcher(backend)
    assert fence(dispatcher, Operation.OFF, "vm1") is Response.SUCCESS
    assert fence(dispatcher, Operation.REBOOT, "vm1") is Response.SUCCESS
    assert "MainThread" in backend.threads
    assert any(name != "MainThread" for name in backend.threads)
    with pytest.raises(BackendError, match="RuntimeError: bus down"):
        asyncio.run(dispatcher.hostlist("r"))


def test_plain_def_returning_a_coroutine_is_a_failure() -> None:
    assert fence(make_dispatcher(LeakyBackend()), Operation.OFF, "vm1") is Response.FAIL


def test_authorization_plugins_refuse_and_fail_closed() -> None:
    backend = SlowBackend()
    dispatcher = make_dispatcher(backend, extensions=[Denier(), Crasher()])
    assert fence(dispatcher, Operation.OFF, "vm1") is Response.SUCCESS
    assert fence(dispatcher, Operation.OFF, "vm2") is Response.PERM
    assert fence(dispatcher, Operation.STATUS, "vm4") is Response.PERM
    assert fence(dispatcher, Operation.DEVSTATUS, "vm2") is Response.SUCCESS
    assert backend.calls == [("off", "vm1")]
    names = [s.domain for s in asyncio.run(dispatcher.hostlist("r"))]
    assert names == ["vm1"]


def test_observers_see_every_request_and_a_broken_one_harms_nobody() -> None:
    recorder = Recorder()
    dispatcher = make_dispatcher(
        SlowBackend(),
        config='groups { group { ip = "198.51.100.11"; uuid = "vm1"; } }',
        extensions=[BrokenObserver(), recorder],
    )

    async def main() -> list[Response]:
        answers = [
            await dispatcher.fence(Operation.OFF, target("vm1")),
            await dispatcher.fence(Operation.OFF, target("vm3")),
            await dispatcher.fence(Operation.ON, target("boom")),
        ]
        await dispatcher.hostlist("198.51.100.11")
        await asyncio.sleep(0)  # observers are scheduled after the answer
        return answers

    assert asyncio.run(main()) == [Response.SUCCESS, Response.PERM, Response.PERM]
    seen = [(r.operation, r.target.domain, r.response, r.listener) for r in recorder.seen]
    assert seen == [
        (Operation.OFF, "vm1", Response.SUCCESS, "test-listener"),
        (Operation.OFF, "vm3", Response.PERM, "test-listener"),
        (Operation.ON, "boom", Response.PERM, "test-listener"),
        (Operation.HOSTLIST, "", Response.SUCCESS, "test-listener"),
    ]
    assert recorder.seen[0].duration >= 0.05
    assert recorder.seen[1].reason == "denied by the static map"


def test_observer_gets_the_backend_error() -> None:
    recorder = Recorder()
    dispatcher = make_dispatcher(SlowBackend(), extensions=[recorder])

    async def main() -> None:
        await dispatcher.fence(Operation.OFF, target("boom"))
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [(r.response, r.reason) for r in recorder.seen] == [
        (Response.FAIL, "hypervisor unreachable")
    ]


def test_keyed_locks_are_dropped_when_unused() -> None:
    locks = KeyedLocks()

    async def main() -> None:
        async with locks.hold("a"):
            assert len(locks) == 1
        assert len(locks) == 0

    asyncio.run(main())


def test_incomplete_backend_plugin_is_refused_with_its_name() -> None:
    class HalfBackend:
        @hookimpl
        def fence_virt_backend_check(self) -> Availability:
            return Availability.yes("half")

    with pytest.raises(PluginError, match=r"half.*half-dist.*fence_virt_backend_create"):
        build_plugin_manager([entry(HalfBackend, "half")])


def test_extension_without_extension_hooks_is_refused() -> None:
    class Idle:
        pass

    with pytest.raises(PluginError, match=r"idle.*idle-dist.*none of the extension hooks"):
        build_plugin_manager([entry(Idle(), "idle", PluginKind.EXTENSION)])


def test_two_backends_are_refused() -> None:
    entries = [entry(BackendPlugin(SlowBackend()), n) for n in ("a", "b")]
    with pytest.raises(PluginError, match="only one backend"):
        build_plugin_manager(entries)


def test_misspelled_hook_is_refused() -> None:
    class Typo(BackendPlugin):
        @hookimpl
        def fence_virt_backend_craete(self) -> object:
            return self.backend

    with pytest.raises(PluginError) as info:
        build_plugin_manager([entry(Typo(SlowBackend()), "typo")])
    assert str(info.value) == (
        "plugin 'fence_virt.backends:typo' (typo-dist): implements hooks that do not exist: "
        "'fence_virt_backend_craete' (did you mean 'fence_virt_backend_create'?)"
    )


def test_a_wrong_argument_name_is_one_line() -> None:
    class WrongArgument(BackendPlugin):
        @hookimpl
        def fence_virt_backend_check(self, sectoin: object) -> Availability:
            del sectoin
            return Availability.yes("x")

    with pytest.raises(PluginError) as info:
        build_plugin_manager([entry(WrongArgument(SlowBackend()), "wrongarg")])
    message = str(info.value)
    assert "\n" not in message
    assert "sectoin" in message
    assert "object at 0x" not in message


def test_create_returning_a_non_backend_names_the_plugin() -> None:
    class Wrong(BackendPlugin):
        @hookimpl
        def fence_virt_backend_create(self) -> object:
            return object()

    main = entry(Wrong(None), "wrong")
    hooks = PluginHooks(build_plugin_manager([main]), [main])

    with pytest.raises(
        PluginError,
        match=r"fence_virt.backends:wrong' \(wrong-dist\).*returned a object without "
        r"describe, devstatus, hostlist, off, on, reboot, start, status, stop, not a Backend",
    ):
        hooks.backend_create(main, ConfigSection("backends/wrong"), ConfigTree())


class CancellingBackend(SlowBackend):
    """Raises CancelledError of its own, from the loop and from a worker thread."""

    async def off(self, target: Target) -> Any:  # type: ignore[override]
        raise asyncio.CancelledError

    def on(self, target: Target) -> Any:
        raise asyncio.CancelledError


@pytest.mark.parametrize("operation", [Operation.OFF, Operation.ON])
def test_a_backend_raising_cancelled_error_is_a_logged_failure(
    operation: Operation, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    dispatcher = make_dispatcher(CancellingBackend(), extensions=[recorder])

    async def main() -> Response:
        answer = await dispatcher.fence(operation, target("vm1"))
        await asyncio.sleep(0)
        return answer

    assert asyncio.run(main()) is Response.FAIL
    assert "raised CancelledError" in caplog.text
    assert [r.response for r in recorder.seen] == [Response.FAIL]


def test_a_request_cancelled_by_a_stop_stays_cancelled() -> None:
    backend = AsyncBackend()
    dispatcher = make_dispatcher(backend)

    async def main() -> None:
        started = asyncio.Event()

        async def slow_off(target: Target) -> Response:
            started.set()
            await asyncio.sleep(10)
            return Response.SUCCESS

        backend.off = slow_off  # type: ignore[method-assign]
        task = asyncio.create_task(dispatcher.fence(Operation.OFF, target("vm1")))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_an_async_def_hook_is_refused() -> None:
    class AsyncObserver:
        @hookimpl
        async def fence_virt_request_finished(self) -> None:
            return None

    with pytest.raises(
        PluginError, match=r"not async def \(never run\): fence_virt_request_finished"
    ):
        build_plugin_manager([entry(AsyncObserver(), "asyncobs", PluginKind.EXTENSION)])


# --- found by scripts/mutation (docs/mutation.md) ----------------------------------------------


class ListingBackend(SlowBackend):
    """hostlist answers whatever the test puts in ``listing``."""

    def __init__(self, listing: object) -> None:
        super().__init__()
        self.listing = listing

    def hostlist(self, requester: str) -> Any:
        del requester
        return self.listing


@pytest.mark.parametrize(
    "listing",
    [["vm1"], [VMS[0], ("vm3", "33333333-3333-3333-3333-333333333333", 5)], None, 7],
    ids=["names", "one-tuple", "none", "int"],
)
def test_a_host_list_that_is_not_host_states_is_the_backends_failure(listing: object) -> None:
    """An open map reads no row, so a list of anything else would reach the listener's
    encoder: refused here, whether the container or one row is wrong."""
    dispatcher = make_dispatcher(ListingBackend(listing))
    with pytest.raises(PluginError, match=r"hostlist returned .*, not a sequence of HostState"):
        asyncio.run(dispatcher.hostlist("198.51.100.11"))


def test_a_call_that_cannot_be_submitted_releases_the_vm() -> None:
    """The worker pool is shut down (the daemon stopping): the request fails, and the VM's
    lock is not left held, so nothing later on that VM waits forever."""
    backend = SlowBackend()
    pool = ThreadPoolExecutor(max_workers=1)
    runner = BackendRunner(backend, entry(BackendPlugin(backend), "slow"), pool)  # type: ignore[arg-type]
    pool.shutdown()
    due = dataclasses.replace(target("vm1"), deadline=time.monotonic() + 5)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="after shutdown"):
            await runner.operate(Operation.OFF, due)
        assert len(runner._locks) == 0

    asyncio.run(main())
    assert backend.calls == []


def test_the_log_line_gives_the_duration_in_milliseconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fence_virt.dispatch")
    assert fence(make_dispatcher(SlowBackend()), Operation.OFF, "vm1") is Response.SUCCESS
    found = re.search(r"off vm1 \(requester .*\): success in ([0-9.]+) ms", caplog.text)
    assert found is not None, caplog.text
    assert 50 <= float(found.group(1)) < 5000  # SlowBackend sleeps 0.05 s


def test_releasing_a_keyed_lock_twice_does_nothing_the_second_time() -> None:
    """The deadline path may release a VM from two places: the second call must not free
    the lock another request holds by then."""
    locks = KeyedLocks()

    async def main() -> None:
        release = await locks.acquire("vm1")
        release()
        later = await locks.acquire("vm1")
        release()  # stale: must not release the later holder's lock
        waiter = asyncio.ensure_future(locks.acquire("vm1"))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        later()
        (await waiter)()
        assert len(locks) == 0

    asyncio.run(main())


def test_null_is_no_error_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    dispatcher = make_dispatcher(SlowBackend(), extensions=[recorder])
    assert fence(dispatcher, Operation.NULL, "vm1") is Response.FAIL
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
    asyncio.run(asyncio.sleep(0))
    assert [(r.response, r.reason) for r in recorder.seen] == [(Response.FAIL, None)]


class HostlistAuditor:
    """Authorization plugin recording the target of every host-list row it is asked about."""

    def __init__(self) -> None:
        self.targets: list[Target] = []

    @hookimpl
    def fence_virt_authorize(self, target: Target, vm: HostState | None) -> bool | None:
        if vm is not None:
            self.targets.append(target)
        return None


def test_host_list_rows_are_authorized_by_name() -> None:
    auditor, recorder = HostlistAuditor(), Recorder()
    dispatcher = make_dispatcher(SlowBackend(), extensions=[auditor, recorder])

    async def main() -> Sequence[HostState]:
        rows = await dispatcher.hostlist("198.51.100.11")
        await asyncio.sleep(0)  # the observers run right after the answer
        return rows

    rows = asyncio.run(main())
    [record] = recorder.seen
    assert (record.operation, record.response, record.target.seqno) == (
        Operation.HOSTLIST,
        Response.SUCCESS,
        0,
    )
    assert 0 <= record.duration < 5
    assert [row.domain for row in rows] == ["vm1", "vm3"]
    assert [(t.domain, t.by_uuid, t.uuid, t.requester, t.seqno) for t in auditor.targets] == [
        ("vm1", False, None, "198.51.100.11", 0),
        ("vm3", False, None, "198.51.100.11", 0),
    ]
    assert (record.target.domain, record.target.by_uuid) == ("", False)


@pytest.mark.parametrize(
    "operation", [Operation.HOSTLIST, Operation.METADATA, Operation.VALIDATEALL]
)
def test_codes_that_are_no_operation_on_one_vm_fail(operation: Operation) -> None:
    """A listener that hands fence() a code with no VM method (the agents' client-local
    codes, a host list) gets FAIL, never devstatus' SUCCESS."""
    backend = SlowBackend()
    assert fence(make_dispatcher(backend), operation, "vm1") is Response.FAIL
    assert backend.calls == []


def test_a_host_list_cancelled_by_a_stop_stays_cancelled() -> None:
    backend = AsyncBackend()
    recorder = Recorder()
    dispatcher = make_dispatcher(backend, extensions=[recorder])

    async def main() -> None:
        started = asyncio.Event()

        async def slow_hostlist(requester: str) -> Sequence[HostState]:
            started.set()
            await asyncio.sleep(10)
            return VMS

        backend.hostlist = slow_hostlist  # type: ignore[method-assign]
        task = asyncio.create_task(dispatcher.hostlist("198.51.100.11"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)

    asyncio.run(main())
    assert recorder.seen == []  # a stop, not an answer


def test_a_backend_raising_cancelled_error_in_a_host_list_is_a_failure() -> None:
    backend = AsyncBackend()

    async def cancelling_hostlist(requester: str) -> Sequence[HostState]:
        raise asyncio.CancelledError

    backend.hostlist = cancelling_hostlist  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="hostlist failed: CancelledError"):
        asyncio.run(make_dispatcher(backend).hostlist("198.51.100.11"))


def test_a_failed_host_list_is_recorded_with_its_duration() -> None:
    recorder = Recorder()
    dispatcher = make_dispatcher(AsyncBackend(), extensions=[recorder])

    async def main() -> None:
        with pytest.raises(BackendError, match="RuntimeError: bus down"):
            await dispatcher.hostlist("198.51.100.11")
        await asyncio.sleep(0)

    asyncio.run(main())
    [record] = recorder.seen
    assert (record.operation, record.response) == (Operation.HOSTLIST, Response.FAIL)
    assert 0 <= record.duration < 5


class SilentBackend(SlowBackend):
    """Silenceable: keeps silent about vm3 (it is not here); 'crash' raises."""

    def keeps_silent(self, target: Target) -> bool:
        if target.domain == "crash":
            raise BackendError("hypervisor unreachable")
        return target.domain == "vm3"


def test_should_answer_asks_a_silenceable_backend_about_vm_operations_only() -> None:
    dispatcher = make_dispatcher(SilentBackend())

    def answers(operation: Operation, domain: str) -> bool:
        return asyncio.run(dispatcher.should_answer(operation, target(domain)))

    for operation in (Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS):
        assert answers(operation, "vm3") is False
        assert answers(operation, "vm1") is True
    # monitor, list and null name no VM: always answered
    for operation in (Operation.DEVSTATUS, Operation.HOSTLIST, Operation.NULL):
        assert answers(operation, "vm3") is True
    # a failing check never silences a request: it is answered (and fails loudly)
    assert answers(Operation.OFF, "crash") is True
    # a backend without keeps_silent always answers
    assert asyncio.run(make_dispatcher(SlowBackend()).should_answer(Operation.OFF, target("vm3")))
