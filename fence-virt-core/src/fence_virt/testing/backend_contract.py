"""The backend contract suite: what every backend plugin must do, checked as the daemon calls it.

Opt in by subclassing in a test module of your own and giving one fixture,
``backend_harness``, that returns a :class:`BackendHarness` (see the package docstring
:mod:`fence_virt.testing` for a complete example)::

    class TestMyBackendContract(BackendContract):
        @pytest.fixture
        def backend_harness(self) -> Iterator[BackendHarness]: ...

The plugin is registered in a fresh plugin manager and called through core's typed facade
(:mod:`fence_virt.testing.drive`); the backend object is started, called and stopped through
core's :class:`fence_virt.daemon.dispatch.BackendRunner` -- ``def`` methods in worker
threads, ``async def`` methods on the loop, per-VM order, response codes checked -- exactly as
in ``fence_virtd``. What the backend answers is compared with the harness's independent view
of each VM (:attr:`BackendHarness.observe`), never with the backend's own word.

A backend that raises for an operation gets ``FAIL`` for it, as in the daemon; one that
returns something other than a response code fails the suite.
"""

from __future__ import annotations

import asyncio
import uuid as uuidlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from fence_virt.config import load_file, parse_text
from fence_virt.daemon.dispatch import BackendRunner
from fence_virt.errors import ConfigError, FenceVirtError, PluginError
from fence_virt.plugins import PluginEntry, PluginKind
from fence_virt.protocol import HostState, Operation, Response
from fence_virt.testing.drive import ContractWarning, CoroutineRunner, Plugged, plug, single_line
from fence_virt.types import Backend, Target, domain_uuid

__all__ = [
    "Answer",
    "BackendContract",
    "BackendHarness",
    "BadConfig",
    "DrivenBackend",
    "Observed",
    "StuckVmContract",
]

#: the file name the harness's working configuration text is parsed under
CONTRACT_SOURCE = "contract.conf"
#: worker threads for plain-``def`` backend methods: more than the VMs a harness gives
_WORKERS = 32
#: the requester every contract request carries (a documentation address, RFC 5737)
REQUESTER = "198.51.100.200"


@dataclass(frozen=True)
class Observed:
    """One VM as the harness sees it, without asking the backend under test."""

    #: the VM is powered on (running, or anything the hypervisor counts as on)
    running: bool
    #: changes whenever the VM starts again -- libvirt's domain ID, a boot counter -- so a
    #: reboot can be told from doing nothing; ``None`` when the harness cannot tell (the reboot
    #: check then only sees the VM running and warns with :class:`ContractWarning`)
    boot: Hashable | None


@dataclass(frozen=True)
class BadConfig:
    """A configuration text with exactly one bad value in the backend's block."""

    text: str
    #: the 1-based line of the bad value in ``text``, which the error must name
    line: int


@dataclass(frozen=True)
class BackendHarness:
    """Everything the backend suite needs; give a fresh one per test (function-scoped
    fixture): the suite powers VMs off and on and expects to start from the state below."""

    #: what the entry point names: the plugin class (core instantiates it) or an instance
    plugin: object
    #: the entry-point name; the block is ``backends { NAME { ... } }``
    name: str
    #: a working configuration text holding the block
    config: str
    #: at least two VMs that exist and run when the test starts (more make the concurrency
    #: check stronger)
    running: Sequence[str]
    #: reads a VM's power state *not* through the backend under test: a second connection to
    #: the hypervisor, the simulator's own table; called from the event loop between
    #: operations
    observe: Callable[[str], Observed]
    bad_config: BadConfig
    #: a VM name the backend cannot know
    unknown: str = "fence-virt-contract-no-such-vm"
    #: VMs that accept power requests but never change state, for :class:`StuckVmContract`;
    #: one observed running and one observed off are needed
    stuck: Sequence[str] = ()
    #: runs each test's coroutine (start, operations, stop)
    run: CoroutineRunner = asyncio.run
    #: seconds any one backend call may take
    timeout: float = 60.0


@dataclass(frozen=True)
class Answer:
    """What the daemon would send for one backend call, and what the backend raised."""

    response: Response
    error: Exception | None = None

    def __str__(self) -> str:
        if self.error is None:
            return self.response.name
        return f"{self.response.name} (raised {type(self.error).__name__}: {self.error})"


class DrivenBackend:
    """A started backend, called through core's :class:`BackendRunner`."""

    def __init__(self, runner: BackendRunner, timeout: float) -> None:
        self.runner = runner
        self._timeout = timeout

    async def _call(self, what: str, call: Awaitable[Response]) -> Answer:
        deadline = asyncio.timeout(self._timeout)
        try:
            async with deadline:
                return Answer(await call)
        except PluginError:
            raise  # not a response code: a broken contract, not a FAIL answer
        except Exception as exc:  # noqa: BLE001 - as the daemon: a raising backend answers FAIL
            if deadline.expired():
                raise AssertionError(f"{what}: no answer within {self._timeout:g} s") from None
            return Answer(Response.FAIL, exc)

    async def answer(self, operation: Operation, domain: str, *, by_uuid: bool = False) -> Answer:
        """Off/on/reboot/status on ``domain``: the response, or FAIL if the backend raised.

        :raises PluginError: the backend returned something other than a response code.
        :raises AssertionError: no answer within the harness's timeout.
        """
        target = Target(domain=domain, by_uuid=by_uuid, requester=REQUESTER, seqno=1)
        what = f"{operation.name.lower()} {domain}"
        return await self._call(what, self.runner.operate(operation, target))

    async def devstatus(self) -> Answer:
        return await self._call("devstatus", self.runner.devstatus())

    async def hostlist(self) -> Sequence[HostState]:
        async with asyncio.timeout(self._timeout):
            return await self.runner.hostlist(REQUESTER)


def plugged(harness: BackendHarness) -> Plugged:
    """The harness's plugin in a fresh manager, with its working configuration."""
    config = parse_text(harness.config, source=CONTRACT_SOURCE)
    return plug(PluginKind.BACKEND, harness.name, harness.plugin, config)


def create(plugin: Plugged) -> Backend:
    """``fence_virt_backend_create`` through the facade (which checks the type)."""
    return plugin.hooks.backend_create(plugin.entry, plugin.section, plugin.config)


@asynccontextmanager
async def started(
    backend: Backend, entry: PluginEntry, timeout: float
) -> AsyncIterator[DrivenBackend]:
    """Start ``backend`` as the daemon does; stop it and release the worker threads after."""
    executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="contract-backend")
    runner = BackendRunner(backend, entry, executor)
    try:
        async with asyncio.timeout(timeout):
            await runner.start()
        try:
            yield DrivenBackend(runner, timeout)
        finally:
            async with asyncio.timeout(timeout):
                await runner.stop()
    finally:
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


def drive(harness: BackendHarness, body: Callable[[DrivenBackend], Awaitable[None]]) -> None:
    """Create the backend (in this thread, as the daemon does before its loop runs), then run
    ``body`` against it, started, on the harness's runner."""
    assert harness.running, "harness: give the names of running VMs"
    plugin = plugged(harness)
    backend = create(plugin)

    async def main() -> None:
        async with started(backend, plugin.entry, harness.timeout) as driven:
            await body(driven)

    harness.run(main())


def _expect(answer: Answer, expected: Response, what: str) -> None:
    assert answer.response is expected, f"{what}: answered {answer}, expected {expected.name}"


def _running(harness: BackendHarness, vm: str) -> bool:
    running = harness.observe(vm).running
    assert isinstance(running, bool), f"harness: observe({vm!r}).running is {running!r}"
    return running


async def _power_off(harness: BackendHarness, backend: DrivenBackend, vm: str) -> None:
    """Set-up step: ``vm`` off through the backend, confirmed by the harness."""
    answer = await backend.answer(Operation.OFF, vm)
    _expect(answer, Response.SUCCESS, f"set-up: off {vm}")
    assert not _running(harness, vm), f"set-up: off {vm} answered SUCCESS, VM runs"


def _unknown_domains(harness: BackendHarness) -> list[tuple[str, bool]]:
    """An unknown name, and unknown UUIDs with and without the RF_UUID flag."""
    return [
        (harness.unknown, False),
        (str(uuidlib.uuid4()), True),
        (str(uuidlib.uuid4()), False),
    ]


_VM_OPERATIONS = (Operation.OFF, Operation.ON, Operation.REBOOT, Operation.STATUS)


class BackendContract:
    """The checks every backend must pass; subclass it as ``Test...`` and give a
    ``backend_harness`` fixture returning :class:`BackendHarness`."""

    def test_check_finds_the_working_config_usable(self, backend_harness: BackendHarness) -> None:
        """``fence_virt_backend_check`` returns an :class:`Availability` (checked by the
        facade) that says yes, with a one-line reason."""
        plugin = plugged(backend_harness)
        availability = plugin.hooks.backend_check(plugin.entry, plugin.section, plugin.config)
        single_line(availability.reason, "the availability reason")
        assert availability.usable, f"check refused the working config: {availability.reason}"

    def test_create_builds_a_backend(self, backend_harness: BackendHarness) -> None:
        """``fence_virt_backend_create`` returns a :class:`fence_virt.Backend` that describes
        itself in one line."""
        backend = create(plugged(backend_harness))
        single_line(backend.describe(), "describe()")

    def test_status_of_running_vms_is_success(self, backend_harness: BackendHarness) -> None:
        harness = backend_harness
        assert len(harness.running) >= 2, "harness: give at least two running VMs"

        async def body(backend: DrivenBackend) -> None:
            for vm in harness.running:
                assert _running(harness, vm), f"harness: {vm} does not run at start"
                answer = await backend.answer(Operation.STATUS, vm)
                _expect(answer, Response.SUCCESS, f"status {vm}")

        drive(harness, body)

    def test_off_powers_the_vm_off(self, backend_harness: BackendHarness) -> None:
        """SUCCESS only once the VM is off; status then says OFF; off again is SUCCESS; no
        other VM is touched."""
        harness = backend_harness
        vm, others = harness.running[0], harness.running[1:]

        async def body(backend: DrivenBackend) -> None:
            _expect(await backend.answer(Operation.OFF, vm), Response.SUCCESS, f"off {vm}")
            assert not _running(harness, vm), f"off {vm} answered SUCCESS, VM runs"
            _expect(await backend.answer(Operation.STATUS, vm), Response.OFF, f"status {vm} (off)")
            _expect(await backend.answer(Operation.OFF, vm), Response.SUCCESS, f"off {vm} again")
            for other in others:
                assert _running(harness, other), f"off {vm} stopped {other} too"

        drive(harness, body)

    def test_on_powers_the_vm_on(self, backend_harness: BackendHarness) -> None:
        """SUCCESS only once the VM runs; status then says SUCCESS; on again is SUCCESS."""
        harness = backend_harness
        vm = harness.running[0]

        async def body(backend: DrivenBackend) -> None:
            await _power_off(harness, backend, vm)
            _expect(await backend.answer(Operation.ON, vm), Response.SUCCESS, f"on {vm}")
            assert _running(harness, vm), f"on {vm} answered SUCCESS, VM is off"
            _expect(await backend.answer(Operation.STATUS, vm), Response.SUCCESS, f"status {vm}")
            _expect(await backend.answer(Operation.ON, vm), Response.SUCCESS, f"on {vm} again")

        drive(harness, body)

    def test_reboot_restarts_a_running_vm(self, backend_harness: BackendHarness) -> None:
        """SUCCESS only once the VM runs again, after a new start (when the harness can tell)."""
        harness = backend_harness
        vm = harness.running[0]

        async def body(backend: DrivenBackend) -> None:
            before = harness.observe(vm)
            _expect(await backend.answer(Operation.REBOOT, vm), Response.SUCCESS, f"reboot {vm}")
            after = harness.observe(vm)
            assert after.running, f"reboot {vm} answered SUCCESS, VM is off"
            if before.boot is None or after.boot is None:
                warnings.warn(
                    ContractWarning(f"reboot {vm} checked by power state only (no boot token)"),
                    stacklevel=1,
                )
            else:
                assert after.boot != before.boot, f"reboot {vm} answered SUCCESS, no new start"

        drive(harness, body)

    def test_reboot_leaves_an_off_vm_off(self, backend_harness: BackendHarness) -> None:
        """As C: reboot does not power on a VM that is off, and answers SUCCESS."""
        harness = backend_harness
        vm = harness.running[0]

        async def body(backend: DrivenBackend) -> None:
            await _power_off(harness, backend, vm)
            answer = await backend.answer(Operation.REBOOT, vm)
            assert not _running(harness, vm), f"reboot of off {vm} started it"
            _expect(answer, Response.SUCCESS, f"reboot {vm} (off)")

        drive(harness, body)

    def test_operations_accept_the_uuid_the_host_list_gives(
        self, backend_harness: BackendHarness
    ) -> None:
        """A VM named by the UUID in the backend's own host list (``fence_xvm -U``) works."""
        harness = backend_harness
        vm = harness.running[0]

        async def body(backend: DrivenBackend) -> None:
            rows = {row.domain: row for row in await backend.hostlist()}
            assert vm in rows, f"hostlist does not list {vm}"
            vm_uuid = rows[vm].uuid
            _expect(
                await backend.answer(Operation.STATUS, vm_uuid, by_uuid=True),
                Response.SUCCESS,
                f"status {vm_uuid} (UUID of {vm})",
            )
            _expect(
                await backend.answer(Operation.OFF, vm_uuid, by_uuid=True),
                Response.SUCCESS,
                f"off {vm_uuid} (UUID of {vm})",
            )
            assert not _running(harness, vm), f"off by UUID answered SUCCESS, {vm} runs"

        drive(harness, body)

    def test_unknown_vms_fail_every_operation(self, backend_harness: BackendHarness) -> None:
        """Never SUCCESS and never OFF (an unknown VM is not an "off" one: fencing it would
        look done), by name or by UUID; and no known VM is touched."""
        harness = backend_harness

        async def body(backend: DrivenBackend) -> None:
            for domain, by_uuid in _unknown_domains(harness):
                for operation in _VM_OPERATIONS:
                    answer = await backend.answer(operation, domain, by_uuid=by_uuid)
                    what = f"{operation.name.lower()} of unknown VM {domain!r}"
                    assert answer.response not in (Response.SUCCESS, Response.OFF), (
                        f"{what}: answered {answer}"
                    )
            for vm in harness.running:
                assert _running(harness, vm), f"requests for unknown VMs stopped {vm}"

        drive(harness, body)

    def test_devstatus_is_success(self, backend_harness: BackendHarness) -> None:
        async def body(backend: DrivenBackend) -> None:
            _expect(await backend.devstatus(), Response.SUCCESS, "devstatus")

        drive(backend_harness, body)

    def test_hostlist_shows_each_vm_with_its_power(self, backend_harness: BackendHarness) -> None:
        """Every running VM is listed as on, with a canonical UUID; after off, as off."""
        harness = backend_harness
        vm = harness.running[0]

        async def body(backend: DrivenBackend) -> None:
            rows = {row.domain: row for row in await backend.hostlist()}
            for name in harness.running:
                assert name in rows, f"hostlist does not list {name}: {sorted(rows)}"
                assert rows[name].running, f"hostlist says {name} is off: {rows[name]}"
                row_uuid = rows[name].uuid
                assert domain_uuid(row_uuid) == row_uuid, f"{name}: UUID {row_uuid!r} not canonical"
            assert harness.unknown not in rows, f"hostlist lists the unknown VM {harness.unknown}"
            await _power_off(harness, backend, vm)
            after = {row.domain: row for row in await backend.hostlist()}
            assert vm in after, f"hostlist no longer lists {vm} once off"
            assert not after[vm].running, f"hostlist says {vm} is on after off: {after[vm]}"

        drive(harness, body)

    def test_concurrent_operations_on_different_vms(self, backend_harness: BackendHarness) -> None:
        """Every running VM off at once, then on at once, then half off while the other half
        is asked for status: every answer right, every change real."""
        harness = backend_harness
        vms = list(harness.running)
        assert len(vms) >= 2, "harness: give at least two running VMs"

        async def all_at_once(backend: DrivenBackend, calls: list[tuple[Operation, str]]) -> None:
            answers = await asyncio.gather(*(backend.answer(op, vm) for op, vm in calls))
            for (operation, vm), answer in zip(calls, answers, strict=True):
                _expect(answer, Response.SUCCESS, f"{operation.name.lower()} {vm} (concurrent)")

        def powered(wanted: dict[str, bool], step: str) -> None:
            wrong = sorted(vm for vm, on in wanted.items() if _running(harness, vm) != on)
            assert not wrong, f"{step}: answered SUCCESS but {wrong} did not change"

        async def body(backend: DrivenBackend) -> None:
            await all_at_once(backend, [(Operation.OFF, vm) for vm in vms])
            powered(dict.fromkeys(vms, False), "all off at once")
            await all_at_once(backend, [(Operation.ON, vm) for vm in vms])
            powered(dict.fromkeys(vms, True), "all on at once")
            half = vms[::2]
            mixed = [(Operation.OFF if vm in half else Operation.STATUS, vm) for vm in vms]
            await all_at_once(backend, mixed)
            powered({vm: vm not in half for vm in vms}, "half off, half status")

        drive(harness, body)

    def test_a_bad_value_is_reported_at_its_file_and_line(
        self, backend_harness: BackendHarness, tmp_path: Path
    ) -> None:
        """create raises :class:`ConfigError` naming the file and the bad value's line; check
        either raises the same or says no, naming them."""
        bad = backend_harness.bad_config
        path = tmp_path / "fence_virt.conf"
        path.write_text(bad.text)
        where = f"{path}:{bad.line}:"
        config = load_file(path)  # the bad value must be in a value, not in the grammar
        plugin = plug(PluginKind.BACKEND, backend_harness.name, backend_harness.plugin, config)
        with pytest.raises(FenceVirtError) as created:
            plugin.hooks.backend_create(plugin.entry, plugin.section, plugin.config)
        _assert_located(created.value, where, "create")
        try:
            availability = plugin.hooks.backend_check(plugin.entry, plugin.section, plugin.config)
        except FenceVirtError as exc:
            _assert_located(exc, where, "check")
        else:
            assert not availability.usable, "check found the bad config usable"
            assert where in availability.reason, f"check's reason lacks {where} {availability}"


def _assert_located(error: FenceVirtError, where: str, hook: str) -> None:
    assert isinstance(error, ConfigError), f"{hook} raised {type(error).__name__}: {error}"
    assert str(error).startswith(where), f"{hook}'s error does not start with {where} {error}"


class StuckVmContract:
    """Never report success for an operation not carried out: VMs that accept power requests
    but never change state (:attr:`BackendHarness.stuck`) must not get SUCCESS.

    A separate class because not every backend can offer such a VM; list it next to
    :class:`BackendContract` when yours can. A harness without stuck VMs fails it (it is
    never skipped)."""

    def _refused(self, harness: BackendHarness, operation: Operation, *, running: bool) -> None:
        async def body(backend: DrivenBackend) -> None:
            vm = _stuck_vm(harness, running=running)
            answer = await backend.answer(operation, vm)
            assert _running(harness, vm) == running, f"harness: stuck VM {vm} changed state"
            assert answer.response is not Response.SUCCESS, (
                f"{operation.name.lower()} {vm}: answered SUCCESS, but the VM never changed"
            )

        drive(harness, body)

    def test_off_of_a_vm_that_never_stops_is_not_success(
        self, backend_harness: BackendHarness
    ) -> None:
        self._refused(backend_harness, Operation.OFF, running=True)

    def test_on_of_a_vm_that_never_starts_is_not_success(
        self, backend_harness: BackendHarness
    ) -> None:
        self._refused(backend_harness, Operation.ON, running=False)

    def test_reboot_of_a_vm_that_never_stops_is_not_success(
        self, backend_harness: BackendHarness
    ) -> None:
        self._refused(backend_harness, Operation.REBOOT, running=True)


def _stuck_vm(harness: BackendHarness, *, running: bool) -> str:
    for vm in harness.stuck:
        if _running(harness, vm) == running:
            return vm
    state = "runs" if running else "is off"
    pytest.fail(f"StuckVmContract: the harness gives no stuck VM that {state} ({harness.stuck})")
