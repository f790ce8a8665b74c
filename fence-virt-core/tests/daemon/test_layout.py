"""The configuration's shape is checked before plugins are chosen: unknown and repeated
blocks, odd instance names, static-map blocks that would silently open every VM."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon.app import Daemon
from fence_virt.errors import ConfigError
from fence_virt.protocol import Response
from fence_virt.testing.memory import ask

HEAD = 'fence_virtd { listener = "memory"; backend = "memory"; }\n'


def build(text: str) -> Daemon:
    return Daemon.from_config(parse_text(text, source="f.conf"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEAD + "fence_virdt {\n}\n",
            "f.conf:2: unknown block 'fence_virdt' (did you mean 'fence_virtd'? known:",
        ),
        (
            HEAD + 'group {\n ip = "198.51.100.1"; uuid = "vm1";\n}\n',
            "f.conf:2: unknown block 'group' (did you mean 'groups'?",
        ),
        (
            HEAD + "listeners { memory { } }\nlisteners {\n memory { }\n}\n",
            "f.conf:3: block 'listeners' is written twice (first at line 2): merge them",
        ),
        (
            HEAD + "listeners {\n memory { }\n memory { }\n}\n",
            "f.conf:4: listeners/memory is written twice (first at line 3): merge them",
        ),
        (
            HEAD + "fence_virtd {\n}\n",
            "f.conf:2: block 'fence_virtd' is written twice (first at line 1)",
        ),
        (
            'fence_virtd {\n listener = "memory";\n listener = "a/b";\n backend = "memory";\n}\n',
            'f.conf:3: fence_virtd: listener "a/b" is not a plain name',
        ),
        (
            'fence_virtd {\n listener = "x";\n listener = "y";\n listener = "X";\n}\n',
            'f.conf:4: fence_virtd: listener "X" is named twice',
        ),
        (
            HEAD + "listeners {\n memory {\n  groups {\n  }\n }\n}\n",
            "f.conf:4: listeners/memory: its groups block has no group",
        ),
        (
            HEAD + 'listeners {\n memory {\n  groups {\n   grup { ip = "x"; }\n  }\n }\n}\n',
            "f.conf:5: unknown block 'grup' in groups (only group)",
        ),
        (
            HEAD + 'groups {\n group { uuid = "vm1"; }\n grup { ip = "x"; }\n}\n',
            "f.conf:4: unknown block 'grup' in groups (only group)",
        ),
    ],
)
def test_layout_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(text)
    assert str(info.value).startswith(message), str(info.value)


def test_an_empty_top_level_map_is_open_as_in_c_but_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = HEAD + f'listeners {{ memory {{ socket = "{tmp_path}/m"; }} }}\ngroups {{\n}}\n'
    with caplog.at_level(logging.WARNING):
        daemon = build(text)
    assert "f.conf:3: the groups block has no group: every requester may fence every VM" in (
        caplog.text
    )
    assert daemon.listeners[0].static_map.open


def test_the_only_listener_block_keeps_its_own_map_without_a_listener_line(
    tmp_path: Path,
) -> None:
    """No listener line: the block names the instance, with its plugin key and its map."""
    text = f"""
backends {{ memory {{ vm = "vm1"; vm = "vm2"; }} }}
listeners {{
    only {{
        plugin = "memory";
        socket = "{tmp_path}/m.sock";
        groups {{ group {{ ip = "memory"; uuid = "vm1"; }} }}
    }}
}}
"""
    daemon = build(text)
    [instance] = daemon.listeners
    assert (instance.name, instance.entry.name) == ("only", "memory")

    async def main() -> list[str]:
        async with daemon:
            return await asyncio.to_thread(ask, tmp_path / "m.sock", "off vm1", "off vm2")

    assert asyncio.run(main()) == [str(int(Response.SUCCESS)), str(int(Response.PERM))]


def test_a_group_written_straight_into_an_instance_is_an_error() -> None:
    text = HEAD + 'listeners {\n memory {\n  group { ip = "198.51.100.1"; uuid = "vm1"; }\n }\n}\n'
    with pytest.raises(
        ConfigError, match=r"^f.conf:4: listeners/memory: a group block belongs inside groups \{ \}"
    ):
        build(text)
