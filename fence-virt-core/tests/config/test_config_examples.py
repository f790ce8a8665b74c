"""Every real-world sample in tests/data/configs parses, with the values a daemon would read."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.config import ConfigTree, load_file, parse_text

CONFIGS = Path(__file__).parents[1] / "data" / "configs"
SAMPLES = sorted(path.name for path in CONFIGS.glob("*.conf"))
MODULE_PATH = "/usr/lib/x86_64-linux-gnu/fence-virt"


def load(name: str) -> ConfigTree:
    return load_file(CONFIGS / name)


def test_all_samples_are_covered() -> None:
    assert SAMPLES == [
        "debian-default.conf",
        "edge-cases.conf",
        "fv-vec.conf",
        "manpage-description.conf",
        "manpage-example.conf",
        "recipes-cpg-single.conf",
        "recipes-multicast.conf",
        "recipes-serial.conf",
        "recipes-tcp.conf",
        "recipes-vmchannel.conf",
    ]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_round_trips_through_dump(name: str) -> None:
    tree = load(name)
    assert tree.source == str(CONFIGS / name)
    assert parse_text(tree.dump()) == tree


def test_debian_default() -> None:
    tree = load("debian-default.conf")
    assert tree.get("fence_virtd/@listener") == "multicast"
    assert tree.get("fence_virtd/@backend") == "libvirt"
    assert tree.get("fence_virtd/@module_path") is None
    assert tree.get("listeners/multicast/@key_file") == "/etc/fence_virt.key"
    assert tree.get("listeners/multicast/@address") == "225.0.0.12"
    assert tree.get("listeners/multicast/@interface") == "virbr0"
    assert tree.get("backends/libvirt/@uri") == "qemu:///system"
    entry = tree.node("listeners/multicast")
    assert entry is not None
    assert [(v.key, v.line) for v in entry.values] == [
        ("key_file", 8),
        ("address", 9),
        ("interface", 11),
    ]


@pytest.mark.parametrize("name", ["recipes-multicast.conf", "fv-vec.conf"])
def test_multicast_recipe_and_vector_config(name: str) -> None:
    tree = load(name)
    assert tree.get("fence_virtd/@listener") == "multicast"
    assert tree.get("fence_virtd/@backend") == "libvirt"
    assert tree.get("fence_virtd/@module_path") == MODULE_PATH
    multicast = tree.node("listeners/multicast")
    assert multicast is not None
    assert {v.key: v.value for v in multicast.values} == {
        "key_file": (
            "/tmp/anchor/mc/fence_xvm.key"
            if name.startswith("recipes")
            else "/tmp/anchor/vec/short.key"
        ),
        "address": "225.0.0.12",
        "interface": "lo",
        "port": "1229",
        "family": "ipv4",
        "hash": "sha256",
    }
    assert tree.get("backends/libvirt/@uri") == "test:///default"


@pytest.mark.parametrize(
    ("name", "mode"), [("recipes-serial.conf", "serial"), ("recipes-vmchannel.conf", "vmchannel")]
)
def test_serial_and_vmchannel_recipes(name: str, mode: str) -> None:
    tree = load(name)
    assert tree.get("fence_virtd/@listener") == "serial"
    assert tree.get("listeners/serial/@uri") == "test:///tmp/anchor/serial/node.xml"
    assert tree.get("listeners/serial/@path") == "/tmp/anchor/serial"
    assert tree.get("listeners/serial/@mode") == mode
    # the comment after this value must not leak into it
    assert tree.get("listeners/serial/@key_file") == "/tmp/anchor/mc/fence_xvm.key"
    assert tree.get("backends/libvirt/@uri") == "test:///tmp/anchor/serial/node.xml"


def test_tcp_recipe() -> None:
    tree = load("recipes-tcp.conf")
    assert tree.get("fence_virtd/@listener") == "tcp"
    assert tree.get("listeners/tcp/@address") == "127.0.0.1"
    assert tree.get("listeners/tcp/@port") == "1229"
    assert tree.get("listeners/tcp/@family") == "ipv4"
    assert tree.get("listeners/tcp/@key_file") == "/tmp/anchor/mc/fence_xvm.key"
    assert tree.get("listeners/multicast/@address") is None


def test_cpg_single_node_recipe_with_one_line_blocks() -> None:
    tree = load("recipes-cpg-single.conf")
    assert tree.get("fence_virtd/@listener") == "tcp"
    assert tree.get("fence_virtd/@backend") == "cpg"
    assert tree.get("listeners/tcp/@port") == "1231"
    assert tree.get("backends/cpg/@uri") == "test:///tmp/anchor/mc/testnode.xml"
    assert tree.get("backends/cpg/@name_mode") == "name"
    cpg = tree.node("backends/cpg")
    assert cpg is not None
    assert cpg.line == 3


def test_manpage_example_with_groups() -> None:
    tree = load("manpage-example.conf")
    assert tree.get("fence_virtd/@listener") == "multicast"
    assert tree.get("fence_virtd/@backend") == "cpg"
    assert tree.get("listeners/multicast/@key_file") == "/etc/cluster/fence_xvm.key"
    assert tree.get("backends/libvirt/@uri") == "qemu:///system"
    group = tree.node("groups/group")
    assert group is not None
    assert group.value is None
    assert group.get("@name") == "cluster1"
    assert group.all_values("ip") == ("192.168.1.1", "192.168.1.2")
    assert group.all_values("uuid") == (
        "44179d3f-6c63-474f-a212-20c8b4b25b16",
        "1ce02c4b-dfa1-42cb-b5b1-f0b1091ece60",
        "node1",
        "node2",
    )
    # C semantics: unindexed = last in the file, [1] = last, [4] = first
    assert tree.get("groups/group/@uuid") == "node2"
    assert tree.get("groups/group/@uuid[4]") == "44179d3f-6c63-474f-a212-20c8b4b25b16"


def test_manpage_description_snippet() -> None:
    tree = load("manpage-description.conf")
    assert tree.get("foo/bar/@baz") == "1"
    assert tree.get("FOO/Bar/@BAZ") == "1"


def test_edge_cases_sample() -> None:
    tree = load("edge-cases.conf")
    assert tree.get("fence_virtd/@listener") == "tcp"
    assert tree.get("fence_virtd/@debug") == "0"
    assert tree.get("motd") is None
    assert tree.get("@motd") == "line one\nline two # not a comment"
    assert tree.get("@key#with#hashes") == "v#1"
    assert tree.get("@url") == "qemu+ssh://host/system?a=1;b={x}"
    empty = tree.node("empty")
    assert empty is not None
    assert (empty.children, empty.values, empty.line) == ((), (), 11)
    assert [g.value for g in tree.children_named("groups")[0].children_named("group")] == [
        "web",
        None,
        "web",
    ]
    assert tree.get("groups/group[@web]/@uuid") == "vm9"
    assert tree.get("groups/group[@WEB]") == "web"
    assert tree.get("groups/group[2]/@name") == "db"
    assert tree.get("groups/group[3]/@uuid[2]") == "vm1"
    key = tree.entry("key#with#hashes")
    assert key is not None
    assert key.line == 28
