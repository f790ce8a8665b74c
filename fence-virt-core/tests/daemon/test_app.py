"""The Daemon application object in-process: several listener instances against one backend,
per-instance static maps, extensions, start/stop order and failures.

Uses the kit's memory listener and backend (fence_virt.testing.memory) and the recorder/deny
extensions, registered by the fence-virt-testplugins distribution and found through their real
entry points."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path

import pytest

from fence_virt import Availability, Target, hookimpl
from fence_virt.config import parse_text
from fence_virt.daemon.app import Daemon, ListenerInstance
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import BackendError, ConfigError, PluginError, UserError
from fence_virt.plugins import PluginEntry, PluginHooks, PluginKind, build_plugin_manager
from fence_virt.protocol import Response
from fence_virt.testing.memory import MemoryListener, ask

SUCCESS, FAIL, OFF, PERM = (
    str(int(r)) for r in (Response.SUCCESS, Response.FAIL, Response.OFF, Response.PERM)
)


def two_instances(tmp_path: Path, extra: str = "") -> str:
    return f"""
fence_virtd {{ listener = "cluster-a"; listener = "cluster-b"; backend = "memory"; }}
listeners {{
    cluster-a {{ plugin = "memory"; socket = "{tmp_path}/a.sock"; requester = "198.51.100.1"; }}
    cluster-b {{
        plugin = "memory";
        socket = "{tmp_path}/b.sock";
        requester = "198.51.100.2";
        groups {{ group {{ ip = "198.51.100.2"; uuid = "vm2"; }} }}
    }}
}}
groups {{ group {{ ip = "198.51.100.1"; uuid = "vm1"; uuid = "vm2"; }} }}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
{extra}
"""


async def asked(sock: Path, *lines: str) -> list[str]:
    return await asyncio.to_thread(ask, sock, *lines)


def test_two_instances_share_one_backend_with_their_own_maps(tmp_path: Path) -> None:
    record = tmp_path / "requests.jsonl"
    text = two_instances(tmp_path, f'extensions {{ recorder {{ file = "{record}"; }} }}')
    daemon = Daemon.from_config(parse_text(text, source="two.conf"))
    assert [i.name for i in daemon.listeners] == ["cluster-a", "cluster-b"]

    async def main() -> tuple[list[str], list[str], list[str]]:
        async with daemon:
            b = await asked(tmp_path / "b.sock", "off vm1", "off vm2", "status vm2", "list")
            a = await asked(tmp_path / "a.sock", "status vm2", "on vm2", "off vm1")
            again = await asked(tmp_path / "b.sock", "status vm1")
            await asyncio.sleep(0.05)  # observers run after the answers
        return a, b, again

    a, b, again = asyncio.run(main())
    # instance b has its own map: only vm2, only for 198.51.100.2; the top-level map is a's
    assert b == [PERM, SUCCESS, OFF, "vm2 " + b[3].split()[1] + " 5"]
    assert a == [OFF, SUCCESS, SUCCESS]
    assert again == [PERM]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["listener"], r["operation"], r["domain"], r["response"]) for r in rows] == [
        ("cluster-b", "off", "vm1", "perm"),
        ("cluster-b", "off", "vm2", "success"),
        ("cluster-b", "status", "vm2", "off"),
        ("cluster-b", "hostlist", "", "success"),
        ("cluster-a", "status", "vm2", "off"),
        ("cluster-a", "on", "vm2", "success"),
        ("cluster-a", "off", "vm1", "success"),
        ("cluster-b", "status", "vm1", "perm"),
    ]
    assert not (tmp_path / "a.sock").exists()
    assert not (tmp_path / "b.sock").exists()


def test_extensions_authorize_and_observe_together(tmp_path: Path) -> None:
    record = tmp_path / "requests.jsonl"
    text = f"""
fence_virtd {{ listener = "memory"; backend = "memory"; }}
listeners {{ memory {{ socket = "{tmp_path}/m.sock"; }} }}
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
extensions {{
    deny {{ domain = "vm2"; }}
    recorder {{ file = "{record}"; }}
}}
"""
    daemon = Daemon.from_config(parse_text(text))

    async def main() -> list[str]:
        async with daemon:
            answers = await asked(tmp_path / "m.sock", "off vm2", "off vm1", "list")
            await asyncio.sleep(0.05)
        return answers

    answers = asyncio.run(main())
    assert answers[:2] == [PERM, SUCCESS]
    assert [row.split()[0] for row in answers[2].splitlines()] == ["vm1"]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert rows[0]["reason"] == "refused by fence_virt.extensions:deny"


def test_a_c_config_with_one_listener_keeps_its_meaning(tmp_path: Path) -> None:
    text = f"""
fence_virtd {{ listener = "memory"; backend = "memory"; }}
listeners {{ memory {{ socket = "{tmp_path}/m.sock"; }} }}
groups {{ group {{ ip = "memory"; uuid = "vm1"; }} }}
"""
    daemon = Daemon.from_config(parse_text(text))
    [instance] = daemon.listeners
    assert (instance.name, instance.entry.name) == ("memory", "memory")

    async def main() -> list[str]:
        async with daemon:
            return await asked(tmp_path / "m.sock", "status vm1", "status vm2")

    assert asyncio.run(main()) == [SUCCESS, PERM]


def test_a_listener_named_twice_is_a_config_error(tmp_path: Path) -> None:
    text = 'fence_virtd {\n listener = "memory";\n listener = "MEMORY";\n backend = "memory";\n}\n'
    with pytest.raises(
        ConfigError, match=r"^x.conf:3: fence_virtd: listener \"MEMORY\" is named twice"
    ):
        Daemon.from_config(parse_text(text, source="x.conf"))


def test_an_instance_of_an_unknown_plugin_names_it(tmp_path: Path) -> None:
    text = (
        'fence_virtd { listener = "b"; backend = "memory"; }\n'
        'listeners { b { plugin = "nosuch"; } }\n'
    )
    with pytest.raises(PluginError, match=r"'nosuch'.*installed: .*memory"):
        Daemon.from_config(parse_text(text))


def test_an_unknown_extension_block_stops_the_build() -> None:
    text = 'fence_virtd { listener = "memory"; backend = "memory"; }\nextensions { audit { } }\n'
    with pytest.raises(
        PluginError, match=r"no extension plugin of this name.*'audit'|'audit'.*no extension"
    ):
        Daemon.from_config(parse_text(text))


def test_a_failing_second_listener_stops_the_first_and_the_backend(tmp_path: Path) -> None:
    text = two_instances(tmp_path).replace(f"{tmp_path}/b.sock", f"{tmp_path}/missing/b.sock")
    daemon = Daemon.from_config(parse_text(text))

    async def main() -> None:
        with pytest.raises(UserError, match=r"listener cluster-b \(memory listener on .*missing"):
            await daemon.start()

    asyncio.run(main())
    assert not (tmp_path / "a.sock").exists(), "the first listener was not stopped"


def test_request_stop_ends_run(tmp_path: Path) -> None:
    daemon = Daemon.from_config(parse_text(two_instances(tmp_path)))
    ready: list[bool] = []

    async def main() -> None:
        task = asyncio.create_task(daemon.run(ready=lambda: ready.append(True)))
        while not ready:
            await asyncio.sleep(0.01)
        assert (tmp_path / "a.sock").exists()
        daemon.request_stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert not (tmp_path / "a.sock").exists()


def test_every_extensions_block_counts(tmp_path: Path) -> None:
    """Unlike C's last-block-wins, a second ``extensions`` block must not drop an authorizer."""
    record = tmp_path / "requests.jsonl"
    text = f"""
fence_virtd {{ listener = "memory"; backend = "memory"; }}
listeners {{ memory {{ socket = "{tmp_path}/m.sock"; }} }}
extensions {{ deny {{ domain = "vm2"; }} }}
extensions {{ recorder {{ file = "{record}"; }} }}
"""
    daemon = Daemon.from_config(parse_text(text))

    async def main() -> list[str]:
        async with daemon:
            answers = await asked(tmp_path / "m.sock", "off vm2", "off vm1")
            await asyncio.sleep(0.05)
        return answers

    assert asyncio.run(main()) == [PERM, SUCCESS]
    assert len(record.read_text().splitlines()) == 2


def test_an_extension_configured_twice_is_a_config_error() -> None:
    text = (
        'fence_virtd { listener = "memory"; backend = "memory"; }\n'
        'extensions { deny { domain = "vm1"; } }\n'
        "extensions {\n deny { }\n}\n"
    )
    with pytest.raises(
        ConfigError, match=r"^x.conf:4: extensions/deny: configured twice \(first at line 2\)"
    ):
        Daemon.from_config(parse_text(text, source="x.conf"))


# ---------------------------------------------------------------------------------------------
# start and stop with small inline plugins: hung calls, failed starts, stop hooks


class InlineBackend:
    """A backend whose start/off can be made to hang or fail; records what core called."""

    def __init__(self, *, hang_start: bool = False, fail_start: bool = False) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        self.hang_start = hang_start
        self.fail_start = fail_start

    def describe(self) -> str:
        return "inline"

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise BackendError("no hypervisor")
        if self.hang_start:
            self.release.wait(30)

    def stop(self) -> None:
        self.calls.append("stop")

    def off(self, target: Target) -> Response:
        self.calls.append(f"off {target.domain}")
        self.release.wait(30)  # a destroy that hangs
        return Response.SUCCESS

    on = reboot = status = off

    def devstatus(self) -> Response:
        return Response.SUCCESS

    def hostlist(self, requester: str) -> list[object]:
        return []


class InlinePlugins:
    """Backend plugin and a daemon_stopped observer in one object."""

    def __init__(self, backend: InlineBackend) -> None:
        self.backend = backend
        self.stopped = 0

    @hookimpl
    def fence_virt_backend_check(self) -> Availability:
        return Availability.yes("inline")

    @hookimpl
    def fence_virt_backend_create(self) -> InlineBackend:
        return self.backend

    @hookimpl
    def fence_virt_daemon_stopped(self) -> None:
        self.stopped += 1


class HalfStartingListener(MemoryListener):
    """Opens its socket, then fails: the daemon must still stop it."""

    async def start(self, dispatcher: object) -> None:
        await super().start(dispatcher)  # type: ignore[arg-type]
        raise UserError("second socket refused")


def inline_daemon(
    tmp_path: Path, backend: InlineBackend, listener: object = None, **kw: object
) -> tuple[Daemon, InlinePlugins]:
    plugins = InlinePlugins(backend)
    entry = PluginEntry(PluginKind.BACKEND, "inline", "tests:inline", "tests", "0", obj=plugins)
    hooks = PluginHooks(build_plugin_manager([entry]), [entry])
    memory = PluginEntry(PluginKind.LISTENER, "memory", "tests:memory", "tests", "0", obj=object())
    instance = ListenerInstance(
        name="memory",
        entry=memory,
        listener=listener or MemoryListener(tmp_path / "m.sock"),  # type: ignore[arg-type]
        static_map=StaticMap(),
    )
    daemon = Daemon(hooks=hooks, backend=backend, backend_entry=entry, listeners=[instance], **kw)  # type: ignore[arg-type]
    return daemon, plugins


def test_a_hung_backend_call_does_not_hold_the_stop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = InlineBackend()
    daemon, plugins = inline_daemon(tmp_path, backend, stop_grace=0.3)

    async def main() -> None:
        await daemon.start()
        asking = asyncio.create_task(asked(tmp_path / "m.sock", "off vm1"))
        while "off vm1" not in backend.calls:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(daemon.stop(), 5)
        asking.cancel()

    try:
        with caplog.at_level(logging.WARNING):
            asyncio.run(main())
    finally:
        backend.release.set()
    assert daemon.abandoned_calls == 1
    assert "1 backend call(s) still running 0 s after the stop" in caplog.text
    assert plugins.stopped == 1


def test_a_stop_ends_a_backend_start_that_hangs(tmp_path: Path) -> None:
    backend = InlineBackend(hang_start=True)
    daemon, plugins = inline_daemon(tmp_path, backend, wait_for_backend=True, stop_grace=0.3)

    async def main() -> None:
        task = asyncio.create_task(daemon.run())
        while "start" not in backend.calls:
            await asyncio.sleep(0.01)
        daemon.request_stop()
        await asyncio.wait_for(task, 5)

    try:
        asyncio.run(main())
    finally:
        backend.release.set()
    assert "stop" not in backend.calls, "stop() called on a backend that never started"
    assert not (tmp_path / "m.sock").exists()
    assert plugins.stopped == 1


def test_a_backend_that_failed_to_start_is_not_stopped(tmp_path: Path) -> None:
    backend = InlineBackend(fail_start=True)
    daemon, _ = inline_daemon(tmp_path, backend)

    async def main() -> None:
        with pytest.raises(UserError, match="backend inline failed to start: no hypervisor"):
            await daemon.start()

    asyncio.run(main())
    assert backend.calls == ["start"]


def test_a_listener_that_fails_half_way_is_stopped(tmp_path: Path) -> None:
    backend = InlineBackend()
    listener = HalfStartingListener(tmp_path / "half.sock")
    daemon, _ = inline_daemon(tmp_path, backend, listener=listener)

    async def main() -> None:
        with pytest.raises(
            UserError, match=r"listener memory \(memory listener on .*second socket refused"
        ):
            await daemon.start()

    asyncio.run(main())
    assert not (tmp_path / "half.sock").exists(), "the half-started listener kept its socket"
    assert backend.calls == ["start", "stop"]


@pytest.mark.parametrize(
    ("inner", "line", "what"),
    [
        ('plugin = "memory";\n plugin = "memory";\n', 5, "key 'plugin'"),
        ('groups { group { ip = "x"; uuid = "vm1"; } }\n groups { }\n', 5, "block 'groups'"),
    ],
    ids=["plugin", "groups"],
)
def test_an_instance_s_own_plugin_or_groups_written_twice_is_an_error(
    tmp_path: Path, inner: str, line: int, what: str
) -> None:
    """Issue 21 D11: these are ours (C has neither); the last of two would silently choose the
    plugin or the static map, so both lines are named and the daemon stops."""
    text = (
        'fence_virtd { listener = "a"; backend = "memory"; }\n'
        f'listeners {{\n a {{\n {inner} socket = "{tmp_path}/a.sock";\n }}\n}}\n'
        'backends { memory { vm = "vm1"; } }\n'
    )
    with pytest.raises(
        ConfigError,
        match=rf"^x\.conf:{line}: listeners/a: {what} is written twice \(first at line 4\)",
    ):
        Daemon.from_config(parse_text(text, source="x.conf"))


def test_keys_c_reads_once_warn_when_repeated_and_the_last_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21 D11: a C config with ``backend`` or a group's ``name`` twice still loads, as in
    C, with one warning naming both lines."""
    text = (
        'fence_virtd {\n listener = "memory";\n backend = "nosuch";\n backend = "memory";\n}\n'
        f'listeners {{ memory {{ socket = "{tmp_path}/m.sock"; }} }}\n'
        'groups {\n group {\n  name = "a";\n  name = "b";\n  ip = "x";\n  uuid = "vm1";\n }\n}\n'
        'backends { memory { vm = "vm1"; } }\n'
    )
    with caplog.at_level(logging.WARNING):
        daemon = Daemon.from_config(parse_text(text, source="x.conf"))
    assert daemon.backend_entry.name == "memory"
    assert [g.name for g in daemon.listeners[0].static_map.groups] == ["b"]
    assert (
        "x.conf:4: key 'backend' in fence_virtd is written 2 times (also at line 3): "
        "the last one is used" in caplog.messages
    )
    assert (
        "x.conf:10: key 'name' in a groups/group block is written 2 times (also at line 9): "
        "the last one is used" in caplog.messages
    )
