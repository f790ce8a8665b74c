"""The contract suites run against the kit's own in-memory plugins: the memory backend (as a
``def`` backend, and wrapped as an ``async def`` one) with its stuck VMs, and the memory
listener. These are also the worked examples of a harness."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from fence_virt import Target, hookimpl
from fence_virt.config import ConfigSection
from fence_virt.protocol import HostState, Response
from fence_virt.testing import (
    BackendContract,
    BackendHarness,
    BadConfig,
    ClientRequest,
    ListenerContract,
    ListenerHarness,
    Observed,
    StuckVmContract,
)
from fence_virt.testing.memory import (
    MemoryBackend,
    MemoryBackendPlugin,
    MemoryListenerPlugin,
    MemoryMachines,
    fence,
    load_memory_config,
    send_line,
)

RUNNING_VMS = tuple(f"vm{n}" for n in range(1, 7))

MEMORY_CONFIG = (
    "backends {\n"
    "    memory {\n"
    + "".join(f'        vm = "{vm}";\n' for vm in RUNNING_VMS)
    + '        vm = "stuck-on";\n'
    '        shutoff = "stuck-off";\n'
    '        stuck = "stuck-on";\n'
    '        stuck = "stuck-off";\n'
    "    }\n"
    "}\n"
)
#: line 2 is "memory {": the bad key goes right after it, at line 3
BAD_MEMORY_CONFIG = MEMORY_CONFIG.replace(
    "    memory {\n", '    memory {\n        stuck = "nosuch";\n'
)


def memory_harness(plugin: object, machines: MemoryMachines) -> BackendHarness:
    return BackendHarness(
        plugin=plugin,
        name="memory",
        config=MEMORY_CONFIG,
        running=RUNNING_VMS,
        observe=lambda vm: Observed(running=machines.is_running(vm), boot=machines.boots(vm)),
        bad_config=BadConfig(BAD_MEMORY_CONFIG, line=3),
        stuck=("stuck-on", "stuck-off"),
    )


class TestMemoryBackendContract(BackendContract, StuckVmContract):
    @pytest.fixture
    def backend_harness(self) -> BackendHarness:
        machines = MemoryMachines()
        return memory_harness(MemoryBackendPlugin(machines), machines)


class AsyncMemoryBackend:
    """The memory backend with every method ``async def``: core awaits them on the loop."""

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend

    def describe(self) -> str:
        return f"async {self._backend.describe()}"

    async def start(self) -> None:
        self._backend.start()

    async def stop(self) -> None:
        self._backend.stop()

    async def off(self, target: Target) -> Response:
        await asyncio.sleep(0)
        return self._backend.off(target)

    async def on(self, target: Target) -> Response:
        await asyncio.sleep(0)
        return self._backend.on(target)

    async def reboot(self, target: Target) -> Response:
        await asyncio.sleep(0)
        return self._backend.reboot(target)

    async def status(self, target: Target) -> Response:
        return self._backend.status(target)

    async def devstatus(self) -> Response:
        return self._backend.devstatus()

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        return self._backend.hostlist(requester)


class AsyncMemoryBackendPlugin:
    """Async in-memory backend (a contract test of the kit)."""

    def __init__(self, machines: MemoryMachines) -> None:
        self.machines = machines

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> object:
        return MemoryBackendPlugin(self.machines).fence_virt_backend_check(section)

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> AsyncMemoryBackend:
        return AsyncMemoryBackend(MemoryBackend(load_memory_config(section), self.machines))


class TestAsyncMemoryBackendContract(BackendContract, StuckVmContract):
    @pytest.fixture
    def backend_harness(self) -> BackendHarness:
        machines = MemoryMachines()
        return memory_harness(AsyncMemoryBackendPlugin(machines), machines)


REQUESTER = "198.51.100.9"
#: lines the memory listener must refuse without dispatching
MALFORMED_LINES = (b"explode vm1", b"\xff\xfe vm1", b"", b"off vm1 vm2", b"list everything")


class TestMemoryListenerContract(ListenerContract):
    @pytest.fixture
    def listener_harness(self, tmp_path_factory: pytest.TempPathFactory) -> ListenerHarness:
        sock = tmp_path_factory.mktemp("mem") / "s"  # short: a UNIX socket path has 107 bytes

        async def send(request: ClientRequest) -> Response | None:
            return await asyncio.to_thread(fence, sock, request.operation, request.domain)

        async def send_bytes(data: bytes) -> None:
            await asyncio.to_thread(send_line, sock, data)

        return ListenerHarness(
            plugin=MemoryListenerPlugin,
            name="memory",
            config=f'listeners {{ memory {{ socket = "{sock}"; requester = "{REQUESTER}"; }} }}',
            requester=REQUESTER,
            send=send,
            send_bytes=send_bytes,
            malformed=MALFORMED_LINES,
        )


def test_the_memory_backend_reads_back_what_it_did() -> None:
    """Answers come from the machines' state after the button press, not from the press."""
    machines = MemoryMachines()
    machines.define("on-forever", running=True, stuck=True)
    machines.define("plain")
    section = ConfigSection("backends/memory")
    backend = MemoryBackendPlugin(machines).fence_virt_backend_create(section)
    target = Target(domain="on-forever", by_uuid=False, requester="t", seqno=1)
    assert backend.off(target) is Response.FAIL
    assert backend.status(target) is Response.SUCCESS
    plain = Target(domain="plain", by_uuid=False, requester="t", seqno=2)
    assert backend.reboot(plain) is Response.SUCCESS
    assert machines.boots("plain") == 1
