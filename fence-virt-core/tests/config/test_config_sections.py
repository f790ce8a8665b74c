"""Typed sections: defaults, conversions, strict values with file:line, warnings, aliases."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fence_virt.config import ConfigNode, ConfigWarning, load_file, load_section, parse_text
from fence_virt.errors import ConfigError, LocalError

CONFIGS = Path(__file__).parents[1] / "data" / "configs"


class HashType(enum.IntEnum):
    NONE = 0
    SHA1 = 1
    SHA256 = 2
    SHA512 = 3


class Family(enum.Enum):
    IPV4 = 2
    IPV6 = 10

    @classmethod
    def parse(cls, text: str) -> Family:
        if text == "ipv4":
            return cls.IPV4
        if text == "ipv6":
            return cls.IPV6
        raise ValueError("expected ipv4 or ipv6")


class Mode(enum.Enum):
    SERIAL = "serial"
    VMCHANNEL = "vmchannel"


@dataclass(frozen=True)
class Daemon:
    listener: str
    backend: str
    module_path: Path | None = None
    foreground: bool = False
    wait_for_init: bool = field(
        default=False, metadata={"key": "wait_for_init", "aliases": ("wait_for_backend",)}
    )
    debug: int = 0


@dataclass(frozen=True)
class Multicast:
    key_file: Path = Path("/etc/cluster/fence_xvm.key")
    hash: HashType = HashType.SHA256
    auth: HashType = HashType.SHA256
    family: Family = Family.IPV4
    address: str | None = None
    port: int = 1229
    interface: str | None = None


@dataclass(frozen=True)
class Serial:
    uri: str | None = None
    path: Path | None = None
    mode: Mode = Mode.SERIAL


@dataclass(frozen=True)
class Group:
    label: str | None = field(default=None, metadata={"node_value": True})
    name: str | None = None
    uuid: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()


@dataclass(frozen=True)
class Groups:
    groups: tuple[Group, ...] = field(default=(), metadata={"key": "group"})


@dataclass(frozen=True)
class Listeners:
    multicast: Multicast | None = None
    serial: Serial = Serial()


@dataclass(frozen=True)
class Numbers:
    ratio: float = 1.0
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Required:
    token: str


@dataclass(frozen=True)
class NeedsLabel:
    label: str = field(metadata={"node_value": True})


@dataclass(frozen=True)
class NeedsChild:
    required: Required


@dataclass(frozen=True)
class Unsupported:
    items: list[str] = field(default_factory=list)


def section(text: str, path: str) -> ConfigNode | None:
    return parse_text(text, source="fence_virt.conf").node(path)


def test_defaults_when_section_missing() -> None:
    assert load_section(None, Multicast, where="listeners/multicast") == Multicast()


def test_defaults_for_missing_keys_and_conversions() -> None:
    node = section(
        'listeners { multicast {\n key_file = "/k";\n hash = "SHA512";\n'
        ' family = "ipv6";\n port = " 1230 ";\n} }',
        "listeners/multicast",
    )
    assert load_section(node, Multicast, where="listeners/multicast") == Multicast(
        key_file=Path("/k"), hash=HashType.SHA512, family=Family.IPV6, port=1230
    )


def test_recipe_multicast_section() -> None:
    tree = load_file(CONFIGS / "recipes-multicast.conf")
    warnings: list[ConfigWarning] = []
    loaded = load_section(
        tree.node("listeners/multicast"), Multicast, where="listeners/multicast", warnings=warnings
    )
    assert loaded == Multicast(
        key_file=Path("/tmp/anchor/mc/fence_xvm.key"),
        address="225.0.0.12",
        interface="lo",
    )
    assert warnings == []
    daemon = load_section(tree.node("fence_virtd"), Daemon, where="fence_virtd")
    assert daemon == Daemon(
        listener="multicast",
        backend="libvirt",
        module_path=Path("/usr/lib/x86_64-linux-gnu/fence-virt"),
    )


def test_manpage_groups_tuple_fields_in_file_order() -> None:
    tree = load_file(CONFIGS / "manpage-example.conf")
    groups = load_section(tree.node("groups"), Groups, where="groups")
    assert groups == Groups(
        groups=(
            Group(
                name="cluster1",
                uuid=(
                    "44179d3f-6c63-474f-a212-20c8b4b25b16",
                    "1ce02c4b-dfa1-42cb-b5b1-f0b1091ece60",
                    "node1",
                    "node2",
                ),
                ip=("192.168.1.1", "192.168.1.2"),
            ),
        )
    )


def test_node_values_and_several_subsections() -> None:
    node = section('groups { group = "web" { uuid = "a"; } group { ip = "1"; } }', "groups")
    loaded = load_section(node, Groups, where="groups")
    assert loaded.groups == (Group(label="web", uuid=("a",)), Group(ip=("1",)))


def test_single_subsection_last_wins_and_missing_uses_default() -> None:
    node = section('listeners { multicast { port = "1"; } multicast { port = "2"; } }', "listeners")
    loaded = load_section(node, Listeners, where="listeners")
    assert loaded == Listeners(multicast=Multicast(port=2), serial=Serial())


def test_enum_by_name_case_insensitive() -> None:
    node = section('serial { mode = "VMChannel"; path = "/s"; }', "serial")
    assert load_section(node, Serial, where="listeners/serial") == Serial(
        path=Path("/s"), mode=Mode.VMCHANNEL
    )


def test_last_duplicate_wins() -> None:
    node = section('m {\n port = "1";\n PORT = "2";\n}', "m")
    assert load_section(node, Multicast, where="m").port == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('wait_for_init = "1";', True),
        ('wait_for_backend = "1";', True),
        ('wait_for_init = "0"; wait_for_backend = "1";', False),
        ('wait_for_backend = "yes"; wait_for_init = "on";', True),
        ("", False),
    ],
)
def test_alias_is_consulted_only_without_the_key(text: str, expected: bool) -> None:
    node = section(f'd {{ listener = "l"; backend = "b"; {text} }}', "d")
    assert load_section(node, Daemon, where="fence_virtd").wait_for_init is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("0", False), ("2", True), ("Yes", True), ("off", False), (" true ", True)],
)
def test_bool_values(value: str, expected: bool) -> None:
    node = section(f'd {{ listener = "l"; backend = "b"; foreground = "{value}"; }}', "d")
    assert load_section(node, Daemon, where="fence_virtd").foreground is expected


def test_floats_and_tuples_of_ints() -> None:
    node = section('n { ratio = "2.5e1"; ports = "1"; ports = "2"; }', "n")
    assert load_section(node, Numbers, where="n") == Numbers(ratio=25.0, ports=(1, 2))


@pytest.mark.parametrize(
    ("schema", "line", "message"),
    [
        (
            Multicast,
            3,
            "bad value \"abc\" for key 'port' in listeners/multicast: expected a decimal integer",
        ),
        (
            Multicast,
            4,
            "bad value \"sha3\" for key 'hash' in listeners/multicast: "
            "expected one of none, sha1, sha256, sha512",
        ),
        (
            Multicast,
            5,
            "bad value \"ipv5\" for key 'family' in listeners/multicast: expected ipv4 or ipv6",
        ),
    ],
)
def test_bad_values_name_file_line_key_value_and_expectation(
    schema: type, line: int, message: str
) -> None:
    lines = [
        "listeners {",
        "\tmulticast {",
        '\t\tport = "1229";',
        '\t\thash = "sha256";',
        '\t\tfamily = "ipv4";',
        "\t}",
        "}",
    ]
    bad = {3: '\t\tport = "abc";', 4: '\t\thash = "sha3";', 5: '\t\tfamily = "ipv5";'}
    lines[line - 1] = bad[line]
    node = section("\n".join(lines), "listeners/multicast")
    with pytest.raises(ConfigError) as info:
        load_section(node, schema, where="listeners/multicast")
    assert str(info.value) == f"fence_virt.conf:{line}: {message}"
    assert (info.value.path, info.value.line) == ("fence_virt.conf", line)


@pytest.mark.parametrize("value", ["12ab", "1_000", "0x10", "\u0661", "1.0", " "])
def test_ints_are_strict_unlike_atoi(value: str) -> None:
    node = section(f'm {{\nport = "{value}";\n}}', "m")
    with pytest.raises(ConfigError, match=r"^fence_virt\.conf:2: bad value .* decimal integer"):
        load_section(node, Multicast, where="m")


@pytest.mark.parametrize("value", ["maybe", "1.5", "nan"])
def test_bad_bools(value: str) -> None:
    node = section(f'd {{ listener = "l"; backend = "b";\nforeground = "{value}"; }}', "d")
    with pytest.raises(ConfigError, match=r"^fence_virt\.conf:2: .*expected a boolean"):
        load_section(node, Daemon, where="fence_virtd")


@pytest.mark.parametrize("value", ["inf", "nan", "1e999", "1,5", "abc"])
def test_bad_floats(value: str) -> None:
    node = section(f'n {{\nratio = "{value}"; }}', "n")
    with pytest.raises(ConfigError, match=r"^fence_virt\.conf:2: .*decimal number"):
        load_section(node, Numbers, where="n")


def test_bad_value_in_tuple_field() -> None:
    node = section('n {\nports = "1";\nports = "x";\n}', "n")
    with pytest.raises(ConfigError, match=r"^fence_virt\.conf:3: bad value \"x\" for key 'ports'"):
        load_section(node, Numbers, where="n")


def test_bad_value_in_subsection_names_its_path() -> None:
    node = section('listeners {\n multicast {\n  port = "x";\n }\n}', "listeners")
    with pytest.raises(ConfigError) as info:
        load_section(node, Listeners, where="listeners")
    assert str(info.value).startswith(
        "fence_virt.conf:3: bad value \"x\" for key 'port' in listeners/multicast:"
    )


def test_missing_required_key() -> None:
    node = section('a = "b";\nfence_virtd {\n\tbackend = "libvirt";\n}', "fence_virtd")
    with pytest.raises(ConfigError) as info:
        load_section(node, Daemon, where="fence_virtd")
    assert str(info.value) == "fence_virt.conf:2: missing required key 'listener' in fence_virtd"


def test_missing_required_key_without_section_names_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_section(None, Daemon, where="fence_virtd", source="/etc/fence_virt.conf")
    assert str(info.value) == (
        "/etc/fence_virt.conf: missing required key 'listener' in fence_virtd"
    )


def test_missing_required_node_value_and_required_subsection() -> None:
    with pytest.raises(ConfigError, match=r"^fence_virt\.conf:1: block groups/group needs a value"):
        load_section(section("group { }", "group"), NeedsLabel, where="groups/group")
    with pytest.raises(ConfigError, match=r"missing required key 'token' in top/required"):
        load_section(section("top { }", "top"), NeedsChild, where="top")


def test_unknown_keys_warn_with_file_line_and_section(caplog: pytest.LogCaptureFixture) -> None:
    node = section(
        'listeners {\n\tmulticast {\n\t\tintreface = "lo";\n\t\tport = "1";\n'
        '\t\tbogus = "x";\n\t\tsub { y = "1"; }\n\t}\n}',
        "listeners/multicast",
    )
    warnings: list[ConfigWarning] = []
    with caplog.at_level(logging.WARNING, logger="fence_virt.config"):
        loaded = load_section(node, Multicast, where="listeners/multicast", warnings=warnings)
    assert loaded.port == 1
    known = "known: address, auth, family, hash, interface, key_file, port"
    assert [str(w) for w in warnings] == [
        "fence_virt.conf:3: unknown key 'intreface' in listeners/multicast "
        f"(did you mean 'interface'? {known})",
        f"fence_virt.conf:5: unknown key 'bogus' in listeners/multicast ({known})",
        # a block the schema does not read is warned about too (it was silently ignored)
        "fence_virt.conf:6: unknown block 'sub' in listeners/multicast "
        "(ignored; known blocks: none)",
    ]
    assert warnings[0] == ConfigWarning(
        f"unknown key 'intreface' in listeners/multicast (did you mean 'interface'? {known})",
        "fence_virt.conf",
        3,
    )
    assert [r.getMessage() for r in caplog.records] == [str(w) for w in warnings]
    assert all(r.name == "fence_virt.config" for r in caplog.records)


def test_aliases_are_known_keys() -> None:
    node = section('d { listener = "l"; backend = "b"; wait_for_backend = "1"; }', "d")
    warnings: list[ConfigWarning] = []
    load_section(node, Daemon, where="fence_virtd", warnings=warnings)
    assert warnings == []


def test_unknown_keys_in_subsections_are_reported_with_their_path() -> None:
    node = section('groups {\n group {\n  uuid = "a";\n  ipp = "1";\n }\n}', "groups")
    warnings: list[ConfigWarning] = []
    load_section(node, Groups, where="groups", warnings=warnings)
    assert [str(w) for w in warnings] == [
        "fence_virt.conf:4: unknown key 'ipp' in groups/group "
        "(did you mean 'ip'? known: ip, name, uuid)"
    ]


def test_warnings_are_logged_even_without_a_list(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fence_virt.config"):
        load_section(section('s { zzz = "1"; }', "s"), Serial, where="listeners/serial")
    assert caplog.messages == [
        "fence_virt.conf:1: unknown key 'zzz' in listeners/serial (known: mode, path, uri)"
    ]


def test_schema_must_be_a_dataclass_with_supported_types() -> None:
    with pytest.raises(LocalError, match="not a dataclass"):
        load_section(None, dict, where="x")
    with pytest.raises(LocalError, match="unsupported field type"):
        load_section(None, Unsupported, where="x")


def test_a_key_or_block_written_twice_warns_with_both_lines_and_the_last_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 21 D11: C lets the last win without a word; so do we (C configs keep loading),
    but every line of the repeated key or block is named."""
    node = section(
        'listeners {\n\tmulticast {\n\t\tport = "1";\n\t\tPORT = "2";\n\t\tfamily = "ipv4";\n'
        '\t\tport = "3";\n\t}\n\tmulticast {\n\t\tport = "4";\n\t}\n}',
        "listeners",
    )
    warnings: list[ConfigWarning] = []
    with caplog.at_level(logging.WARNING, logger="fence_virt.config"):
        loaded = load_section(node, Listeners, where="listeners", warnings=warnings)
    assert loaded.multicast is not None
    assert loaded.multicast.port == 4
    assert [str(w) for w in warnings] == [
        "fence_virt.conf:8: block 'multicast' in listeners is written 2 times "
        "(also at line 2): the last one is used"
    ]
    first = load_section(node.children[0], Multicast, where="listeners/multicast")
    assert first.port == 3
    assert caplog.messages[-1] == (
        "fence_virt.conf:6: key 'port' in listeners/multicast is written 3 times "
        "(also at lines 3, 4): the last one is used"
    )


def test_repeatable_keys_and_blocks_and_aliases_do_not_warn() -> None:
    node = section(
        'groups {\n group {\n  uuid = "a";\n  uuid = "b";\n  ip = "1";\n  ip = "2";\n }\n'
        ' group {\n  uuid = "c";\n }\n}',
        "groups",
    )
    warnings: list[ConfigWarning] = []
    loaded = load_section(node, Groups, where="groups", warnings=warnings)
    assert [g.uuid for g in loaded.groups] == [("a", "b"), ("c",)]
    node = section(
        'd { listener = "l"; backend = "b"; wait_for_init = "1"; wait_for_backend = "0"; }', "d"
    )
    assert load_section(node, Daemon, where="fence_virtd", warnings=warnings).wait_for_init
    assert warnings == []
