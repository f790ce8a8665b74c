"""The Daemon application object in-process: several listener instances against one backend,
per-instance static maps, extensions, start/stop order and failures.

Uses the kit's memory listener and backend (fence_virt.testing.memory) and the recorder/deny
extensions, registered by the fence-virt-testplugins distribution and found through their real
entry points."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon.app import Daemon
from fence_virt.errors import ConfigError, PluginError, UserError
from fence_virt.protocol import Response
from fence_virt.testing.memory import ask

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
