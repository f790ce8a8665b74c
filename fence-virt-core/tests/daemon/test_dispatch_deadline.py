"""Every request's deadline: what has not started by then never starts, what still runs is
answered FAIL at the deadline and goes on (issue: "requests run after the client gave up").

The backend here is a real object in worker threads whose operations wait on gates the test
opens: no real hypervisor blocks on demand (the libvirtd version of this, SIGSTOPped, is in
fence-virt-backend-libvirt's tests)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fence_virt import Availability, Target, hookimpl
from fence_virt.config import parse_text
from fence_virt.daemon.dispatch import DEFAULT_DEADLINE, BackendRunner, RequestDispatcher
from fence_virt.daemon.settings import daemon_settings
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import ConfigError
from fence_virt.plugins import PluginEntry, PluginHooks, PluginKind, build_plugin_manager
from fence_virt.protocol import HostState, Operation, Response

#: seconds: the deadline of these tests' requests
DEADLINE = 0.3


class GatedBackend:
    """Operations on a VM in ``gates`` block until the gate is set; every call is recorded
    (with the deadline it carried) when it *starts*."""

    def __init__(self, *held: str) -> None:
        self.gates = {vm: threading.Event() for vm in held}
        self.started: list[tuple[str, str, float | None]] = []
        self.ended: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def describe(self) -> str:
        return "gated test backend"

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def _op(self, name: str, target: Target) -> Response:
        with self.lock:
            self.started.append((name, target.domain, target.deadline))
        gate = self.gates.get(target.domain)
        if gate is not None:
            assert gate.wait(30), "gate never opened"
        with self.lock:
            self.ended.append((name, target.domain))
        return Response.SUCCESS

    def off(self, target: Target) -> Response:
        return self._op("off", target)

    def on(self, target: Target) -> Response:
        return self._op("on", target)

    def reboot(self, target: Target) -> Response:
        return self._op("reboot", target)

    def status(self, target: Target) -> Response:
        return self._op("status", target)

    def devstatus(self) -> Response:
        gate = self.gates.get("devstatus")
        if gate is not None:
            assert gate.wait(30)
        return Response.SUCCESS

    def hostlist(self, requester: str) -> Sequence[HostState]:
        gate = self.gates.get("hostlist")
        if gate is not None:
            assert gate.wait(30)
        return []

    def names(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(name, domain) for name, domain, _ in self.started]


class AsyncGatedBackend(GatedBackend):
    """off is a coroutine on the loop, waiting for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.cancelled = False

    async def off(self, target: Target) -> Response:  # type: ignore[override]
        self.started.append(("off", target.domain, target.deadline))
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.ended.append(("off", target.domain))
        return Response.SUCCESS


class Plugin:
    def __init__(self, backend: object) -> None:
        self.backend = backend

    @hookimpl
    def fence_virt_backend_check(self) -> Availability:
        return Availability.yes("test")

    @hookimpl
    def fence_virt_backend_create(self) -> object:
        return self.backend


def dispatcher_for(
    backend: object, *, workers: int = 8, deadline: float = DEADLINE
) -> RequestDispatcher:
    entry = PluginEntry(
        kind=PluginKind.BACKEND,
        name="gated",
        target="tests:gated",
        distribution="gated-dist",
        version="0",
        obj=Plugin(backend),
    )
    hooks = PluginHooks(build_plugin_manager([entry]), [entry])
    runner = BackendRunner(backend, entry, ThreadPoolExecutor(max_workers=workers))  # type: ignore[arg-type]
    return RequestDispatcher(runner, hooks, "test-listener", StaticMap(), deadline)


def target(domain: str) -> Target:
    return Target(domain=domain, by_uuid=False, requester="198.51.100.11", seqno=1)


async def eventually(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_the_backend_gets_the_deadline_in_the_target() -> None:
    backend = GatedBackend()
    before = time.monotonic()
    answer = asyncio.run(dispatcher_for(backend, deadline=30).fence(Operation.OFF, target("vm1")))
    assert answer is Response.SUCCESS
    [(_, _, deadline)] = backend.started
    assert deadline is not None
    assert before + 30 <= deadline <= time.monotonic() + 30


def test_a_request_waiting_for_the_same_vm_past_its_deadline_never_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The second off of vm1 waits behind the first, which hangs (libvirtd stopped): it is
    answered FAIL at its deadline and is not carried out when the first one ends."""
    backend = GatedBackend("vm1")
    dispatcher = dispatcher_for(backend)

    async def main() -> tuple[Response, Response, float]:
        first = asyncio.create_task(dispatcher.fence(Operation.OFF, target("vm1")))
        await eventually(lambda: backend.started)
        started = time.monotonic()
        second = await dispatcher.fence(Operation.REBOOT, target("vm1"))
        waited = time.monotonic() - started
        backend.gates["vm1"].set()
        first_answer = await first
        await asyncio.sleep(0.2)  # a second call would have started by now
        return first_answer, second, waited

    first, second, waited = asyncio.run(main())
    assert second is Response.FAIL
    assert DEADLINE <= waited < DEADLINE + 1
    assert first is Response.FAIL  # it still ran at its own deadline
    assert backend.names() == [("off", "vm1")]
    assert (
        "reboot vm1 failed: dropped, never started: an earlier operation on the same VM still ran "
        "at its deadline" in caplog.text
    )
    said = re.search(r"at its deadline \(([0-9.]+) s after it arrived\)", caplog.text)
    assert said is not None
    assert DEADLINE - 0.2 <= float(said.group(1)) < DEADLINE + 1


def test_a_request_without_a_free_worker_by_its_deadline_never_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One worker thread, busy with a hanging vm1: the off of vm2 (another VM, so no lock
    waits) is dropped at its deadline and does not run once the thread is free."""
    backend = GatedBackend("vm1")
    dispatcher = dispatcher_for(backend, workers=1)

    async def main() -> Response:
        first = asyncio.create_task(dispatcher.fence(Operation.OFF, target("vm1")))
        await eventually(lambda: backend.started)
        second = await dispatcher.fence(Operation.OFF, target("vm2"))
        backend.gates["vm1"].set()
        await first
        await eventually(lambda: backend.ended)
        await asyncio.sleep(0.2)
        return second

    assert asyncio.run(main()) is Response.FAIL
    assert backend.names() == [("off", "vm1")]
    assert "off vm2 dropped, never started: no worker thread was free before its deadline" in (
        caplog.text
    )


def test_an_operation_running_at_its_deadline_is_answered_fail_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A destroy half done is worse than a late one: it goes on, its outcome is logged, and
    the VM's lock stays held until it ends, so the next operation on the VM waits for it."""
    backend = GatedBackend("vm1")
    dispatcher = dispatcher_for(backend, deadline=DEADLINE)
    caplog.set_level(logging.WARNING)

    async def main() -> tuple[Response, float, list[tuple[str, str]]]:
        started = time.monotonic()
        answer = await dispatcher.fence(Operation.OFF, target("vm1"))
        answered_after = time.monotonic() - started
        dispatcher.deadline = 30
        status = asyncio.create_task(dispatcher.fence(Operation.STATUS, target("vm1")))
        await asyncio.sleep(0.2)
        before_release = backend.names()
        backend.gates.pop("vm1").set()
        assert await status is Response.SUCCESS
        return answer, answered_after, before_release

    answer, answered_after, before_release = asyncio.run(main())
    assert answer is Response.FAIL
    assert DEADLINE <= answered_after < DEADLINE + 1
    assert before_release == [("off", "vm1")], "status ran while the late off still held vm1"
    assert backend.names() == [("off", "vm1"), ("status", "vm1")]
    assert backend.ended[0] == ("off", "vm1")
    assert "off vm1 failed: off vm1 still running at its deadline: answered FAIL; it goes on" in (
        caplog.text
    )
    assert "off vm1 (fence_virt.backends:gated), answered FAIL at its deadline, ended 0." in (
        caplog.text
    )
    assert "s later: returned SUCCESS" in caplog.text


def test_an_async_operation_past_its_deadline_goes_on_on_the_loop() -> None:
    backend = AsyncGatedBackend()
    dispatcher = dispatcher_for(backend)

    async def main() -> tuple[Response, list[tuple[str, str]]]:
        answer = await dispatcher.fence(Operation.OFF, target("vm1"))
        backend.release.set()
        await eventually(lambda: backend.ended)
        return answer, backend.ended

    assert asyncio.run(main()) == (Response.FAIL, [("off", "vm1")])


def test_a_stop_cancels_an_async_operation_left_running_at_its_deadline() -> None:
    backend = AsyncGatedBackend()
    dispatcher = dispatcher_for(backend)

    async def main() -> None:
        assert await dispatcher.fence(Operation.OFF, target("vm1")) is Response.FAIL
        await dispatcher._runner.stop()
        await eventually(lambda: backend.cancelled)

    asyncio.run(main())
    assert backend.ended == []


@pytest.mark.parametrize("operation", [Operation.DEVSTATUS])
def test_devstatus_and_hostlist_have_a_deadline_too(operation: Operation) -> None:
    backend = GatedBackend("devstatus", "hostlist")
    dispatcher = dispatcher_for(backend)

    async def main() -> tuple[Response, float]:
        started = time.monotonic()
        answer = await dispatcher.fence(operation, target(""))
        with pytest.raises(Exception, match="hostlist still running at its deadline"):
            await dispatcher.hostlist("198.51.100.11")
        for gate in backend.gates.values():
            gate.set()
        return answer, time.monotonic() - started

    answer, took = asyncio.run(main())
    assert answer is Response.FAIL
    assert took < 2 * DEADLINE + 1


def test_the_default_deadline_is_the_agents_default_timeout() -> None:
    from fence_virt.agents.options import AgentArgs

    assert DEFAULT_DEADLINE == AgentArgs().timeout == 30
    assert daemon_settings(parse_text("")).deadline == DEFAULT_DEADLINE
    config = parse_text('fence_virtd { deadline = "12.5"; }')
    assert daemon_settings(config).deadline == 12.5


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_deadline_that_is_not_a_positive_number_is_a_config_error(value: str) -> None:
    config = parse_text(f'fence_virtd {{\n\tdeadline = "{value}";\n}}\n', source="f.conf")
    with pytest.raises(ConfigError, match=r"f.conf:2.*deadline"):
        daemon_settings(config)
