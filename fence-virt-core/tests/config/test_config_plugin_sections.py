"""What plugins get: ConfigSection (load, error with file:line), ConfigNode.error, and
Annotated checks run by load_section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest

from fence_virt.config import (
    PORT,
    POSITIVE,
    ConfigSection,
    at_least,
    in_range,
    load_section,
    parse_text,
)
from fence_virt.errors import ConfigError

TEXT = """\
listeners {
    tcp {
        port = "70000";
        timeout = "0";
        backlog = "5";
        peer = "198.51.100.1";
        peer = "198.51.100.2";
    }
}
"""


@dataclass(frozen=True)
class TcpSection:
    port: Annotated[int, PORT] = 1229
    timeout: Annotated[float, POSITIVE] = 10.0
    backlog: Annotated[int, in_range(1, 4096)] | None = None
    retries: Annotated[tuple[int, ...], at_least(1)] = ()


def tree_section(text: str = TEXT) -> ConfigSection:
    tree = parse_text(text, source="/etc/fence_virt.conf")
    return ConfigSection("listeners/tcp", tree.node("listeners/tcp"), tree.source)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            'port = "70000";',
            3,
            "\"70000\" for key 'port' in listeners/tcp: expected a number from 1 to 65535",
        ),
        ('port = "0";', 3, "expected a number from 1 to 65535"),
        (
            'timeout = "0";',
            3,
            "bad value \"0\" for key 'timeout' in listeners/tcp: expected a number above 0",
        ),
        ('backlog = "0";', 3, "key 'backlog'"),
        ('retries = "2";\n\t\tretries = "0";', 4, "bad value \"0\" for key 'retries'"),
    ],
)
def test_checks_name_the_key_and_its_line(body: str, line: int, message: str) -> None:
    section = tree_section(f"listeners {{\n\ttcp {{\n\t\t{body}\n\t}}\n}}\n")
    with pytest.raises(ConfigError) as info:
        section.load(TcpSection)
    assert str(info.value).startswith(f"/etc/fence_virt.conf:{line}: ")
    assert message in str(info.value)


def test_checks_accept_good_values() -> None:
    section = tree_section('listeners { tcp { port = "1229"; backlog = "4096"; retries = "1"; } }')
    assert section.load(TcpSection) == TcpSection(port=1229, backlog=4096, retries=(1,))


def test_section_error_points_at_the_key_else_the_block() -> None:
    section = tree_section()
    assert str(section.error("peer", "peer 198.51.100.2 twice")) == (
        "/etc/fence_virt.conf:7: listeners/tcp: peer 198.51.100.2 twice"
    )
    assert str(section.error("missing", "x is needed")) == (
        "/etc/fence_virt.conf:2: listeners/tcp: x is needed"
    )
    assert str(section.error(None, "bad block")).startswith("/etc/fence_virt.conf:2: ")


def test_absent_section_loads_defaults_and_errors_name_the_file() -> None:
    section = ConfigSection("listeners/tcp", None, "/etc/fence_virt.conf")
    assert not section.present
    assert section.name == "tcp"
    assert section.load(TcpSection) == TcpSection()
    assert str(section.error("port", "needed")) == "/etc/fence_virt.conf: listeners/tcp: needed"


def test_config_node_error_uses_the_last_entry_of_a_key() -> None:
    node = parse_text(TEXT, source="f.conf").node("listeners/tcp")
    assert node is not None
    error = node.error("peer", "twice")
    assert (error.path, error.line, str(error)) == ("f.conf", 7, "f.conf:7: twice")


def test_load_section_runs_checks_without_a_section_object() -> None:
    node = parse_text(TEXT, source="f.conf").node("listeners/tcp")
    with pytest.raises(ConfigError, match=r"^f.conf:3: bad value \"70000\" for key 'port' in x"):
        load_section(node, TcpSection, where="x")


def test_an_unknown_block_in_a_section_is_warned_with_its_line() -> None:
    text = 'listeners {\n    tcp {\n        port = "1229";\n        group { ip = "x"; }\n    }\n}\n'
    warnings: list = []
    tree_section(text).load(TcpSection, warnings=warnings)
    assert [str(w) for w in warnings] == [
        "/etc/fence_virt.conf:4: unknown block 'group' in listeners/tcp "
        "(ignored; known blocks: none)"
    ]
