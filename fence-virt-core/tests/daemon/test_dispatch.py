"""BackendDispatcher: permissions, per-VM serialization, concurrency across VMs, failures
turned into FAIL. Uses a real pluggy manager with small inline backend plugins."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fence_virt import Target, hookimpl
from fence_virt.config import parse_text
from fence_virt.daemon.dispatch import BackendDispatcher, KeyedLocks
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, PluginError
from fence_virt.plugins import PluginEntry, PluginHooks, PluginKind, build_plugin_manager
from fence_virt.protocol import HostState, Operation, Response


class SlowBackend:
    """Records overlapping calls per VM; 'boom' raises, 'garbage' returns a bad value."""

    def __init__(self) -> None:
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.max_total = 0
        self.lock = threading.Lock()

    def _op(self, target: Target) -> Any:
        if target.domain == "boom":
            raise BackendError("hypervisor unreachable")
        if target.domain == "garbage":
            return 42
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

    @hookimpl
    def fence_virt_backend_check(self) -> Any:
        from fence_virt import Availability

        return Availability.yes("test")

    @hookimpl
    def fence_virt_backend_start(self) -> bool:
        return True

    @hookimpl
    def fence_virt_backend_stop(self) -> bool:
        return True

    @hookimpl
    def fence_virt_backend_null(self) -> Response:
        return Response.FAIL

    @hookimpl
    def fence_virt_backend_off(self, target: Target) -> Any:
        return self._op(target)

    @hookimpl
    def fence_virt_backend_on(self, target: Target) -> Any:
        return self._op(target)

    @hookimpl
    def fence_virt_backend_reboot(self, target: Target) -> Any:
        return self._op(target)

    @hookimpl
    def fence_virt_backend_status(self, target: Target) -> Any:
        return self._op(target)

    @hookimpl
    def fence_virt_backend_devstatus(self) -> Response:
        return Response.SUCCESS

    @hookimpl
    def fence_virt_backend_hostlist(self) -> Sequence[HostState]:
        return [
            HostState(domain="vm1", uuid="11111111-1111-1111-1111-111111111111", state=1),
            HostState(domain="vm3", uuid="33333333-3333-3333-3333-333333333333", state=5),
        ]


def backend_entry(obj: object, name: str = "slow", distribution: str = "tests") -> PluginEntry:
    """An entry for an in-test backend object, as discovery would produce it."""
    return PluginEntry(
        kind=PluginKind.BACKEND,
        name=name,
        target=f"tests:{name}",
        distribution=distribution,
        version="0",
        obj=obj,
    )


def make_dispatcher(backend: SlowBackend, config: str = "") -> BackendDispatcher:
    entry = backend_entry(backend)
    hooks = PluginHooks(build_plugin_manager(entry), backend=entry)
    smap = StaticMap.from_config(parse_text(config)) if config else StaticMap()
    return BackendDispatcher(hooks, smap, ThreadPoolExecutor(max_workers=8))


def target(domain: str, requester: str = "198.51.100.11") -> Target:
    return Target(domain=domain, by_uuid=False, requester=requester, seqno=1)


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


def test_backend_errors_and_bad_values_become_fail() -> None:
    dispatcher = make_dispatcher(SlowBackend())
    assert asyncio.run(dispatcher.fence(Operation.OFF, target("boom"))) is Response.FAIL
    assert asyncio.run(dispatcher.fence(Operation.OFF, target("garbage"))) is Response.FAIL


def test_static_map_denies_with_perm_and_filters_lists() -> None:
    config = 'groups { group { ip = "198.51.100.11"; uuid = "vm1"; } }'
    dispatcher = make_dispatcher(SlowBackend(), config)
    assert asyncio.run(dispatcher.fence(Operation.OFF, target("vm1"))) is Response.SUCCESS
    assert asyncio.run(dispatcher.fence(Operation.OFF, target("vm3"))) is Response.PERM
    assert (
        asyncio.run(dispatcher.fence(Operation.STATUS, target("vm1", "198.51.100.99")))
        is Response.PERM
    )
    # null and devstatus are not permission-checked (as in C)
    assert asyncio.run(dispatcher.fence(Operation.NULL, target("vm3"))) is Response.FAIL
    assert asyncio.run(dispatcher.fence(Operation.DEVSTATUS, target(""))) is Response.SUCCESS
    names = [s.domain for s in asyncio.run(dispatcher.hostlist("198.51.100.11"))]
    assert names == ["vm1"]


def test_keyed_locks_are_dropped_when_unused() -> None:
    locks = KeyedLocks()

    async def main() -> None:
        async with locks.hold("a"):
            assert len(locks) == 1
        assert len(locks) == 0

    asyncio.run(main())


def test_incomplete_backend_is_refused_with_its_name() -> None:
    class HalfBackend:
        @hookimpl
        def fence_virt_backend_status(self, target: Target) -> Response:
            del target
            return Response.SUCCESS

    entry = backend_entry(HalfBackend, name="half", distribution="half-dist")
    with pytest.raises(PluginError, match=r"half.*half-dist.*fence_virt_backend_off"):
        build_plugin_manager(entry)


def test_two_backends_are_refused() -> None:
    entries = [backend_entry(SlowBackend(), name=n) for n in ("a", "b")]
    with pytest.raises(PluginError, match="only one backend"):
        build_plugin_manager(*entries)


def test_misspelled_hook_is_refused() -> None:
    class Typo(SlowBackend):
        @hookimpl
        def fence_virt_backend_of(self, target: Target) -> Response:
            del target
            return Response.SUCCESS

    entry = backend_entry(Typo(), name="typo")
    with pytest.raises(PluginError, match="fence_virt_backend_of"):
        build_plugin_manager(entry)
