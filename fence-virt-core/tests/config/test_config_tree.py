"""Tree: immutability, C lookup semantics, the natural file-order API, the C dump format."""

from __future__ import annotations

import dataclasses

import pytest

from fence_virt.config import ConfigNode, ConfigTree, ConfigValue, parse_text
from fence_virt.errors import LocalError

GROUPS = """\
groups {
	group = "first" {
		uuid = "a";
		uuid = "b";
		ip = "10.0.0.1";
	}
	group {
		name = "second";
		uuid = "c";
	}
	group = "third" {
		uuid = "d";
	}
}
"""


@pytest.fixture
def groups() -> ConfigTree:
    return parse_text(GROUPS, source="g.conf")


def test_nodes_are_frozen() -> None:
    node = ConfigNode("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ConfigValue("k", "v").value = "w"  # type: ignore[misc]


def test_equality_ignores_line_and_source() -> None:
    assert ConfigNode("a", line=3, source="x") == ConfigNode("a", line=9, source="y")
    assert ConfigValue("k", "v", line=1) == ConfigValue("k", "v", line=2)
    assert ConfigNode("a") != ConfigNode("A")
    assert ConfigTree(values=(ConfigValue("k", "v"),), source="a") == ConfigTree(
        values=(ConfigValue("k", "v"),)
    )


@pytest.mark.parametrize("name", ["", "a b", "a{", "a;", "a=b", 'a"', "#a", "a\n", "a\r"])
def test_names_that_cannot_be_written_are_refused(name: str) -> None:
    with pytest.raises(LocalError):
        ConfigNode(name)
    with pytest.raises(LocalError):
        ConfigValue(name, "v")


@pytest.mark.parametrize("value", ["", 'say "hi"'])
def test_values_that_cannot_be_written_are_refused(value: str) -> None:
    with pytest.raises(LocalError):
        ConfigValue("k", value)
    with pytest.raises(LocalError):
        ConfigNode("n", value)


def test_file_order_api(groups: ConfigTree) -> None:
    top = groups.child("groups")
    assert top is not None
    found = top.children_named("GROUP")
    assert [g.value for g in found] == ["first", None, "third"]
    assert [g.line for g in found] == [2, 7, 11]
    assert found[0].all_values("uuid") == ("a", "b")
    assert [v.line for v in found[0].values_named("uuid")] == [3, 4]
    assert found[0].entry("ip") == ConfigValue("ip", "10.0.0.1")
    assert found[0].entry("nope") is None
    assert top.child("group") is found[-1]
    assert top.child("nope") is None


def test_unindexed_lookup_is_the_last_occurrence(groups: ConfigTree) -> None:
    assert groups.get("groups/group") == "third"
    assert groups.get("groups/group/@uuid") == "d"
    assert groups.node("groups/group") == ConfigNode(
        "group", "third", values=(ConfigValue("uuid", "d"),)
    )


def test_index_counts_from_the_end_like_c(groups: ConfigTree) -> None:
    assert groups.get("groups/group[1]") == "third"
    assert groups.get("groups/group[2]/@name") == "second"
    assert groups.get("groups/group[3]") == "first"
    assert groups.get("groups/group[3]/@uuid[1]") == "b"
    assert groups.get("groups/group[3]/@uuid[2]") == "a"
    assert groups.get("groups/group[3]/@uuid[3]") is None
    assert groups.get("groups/group[4]") is None
    assert groups.get("groups[1]/group[3]/@ip") == "10.0.0.1"


def test_select_by_node_value(groups: ConfigTree) -> None:
    assert groups.get("groups/group[@FIRST]/@uuid") == "b"
    assert groups.get("groups/group[@third]/@uuid") == "d"
    assert groups.get("groups/group[@nope]/@uuid") is None


def test_final_node_segment_returns_that_nodes_value(groups: ConfigTree) -> None:
    # C would return the value of the first stored sibling instead; we return the selected one
    assert groups.get("groups/group[2]") is None
    assert groups.get("groups/group[3]") == "first"
    assert groups.get("groups") is None


def test_missing_paths(groups: ConfigTree) -> None:
    assert groups.get("nope/@x") is None
    assert groups.get("groups/nope/@x") is None
    assert groups.node("groups/nope") is None
    assert groups.get("@x") is None


def test_lookup_relative_to_a_node(groups: ConfigTree) -> None:
    top = groups.node("groups")
    assert top is not None
    assert top.get("group[@second]") is None
    assert top.get("group[2]/@name") == "second"
    assert top.node("group[3]") is not None


@pytest.mark.parametrize(
    "path",
    [
        "",
        "groups/",
        "/groups",
        "groups/group[",
        "groups/group[0]",
        "groups/group[x]",
        "groups/group[-1]",
        "groups/group[@]",
        "groups/@",
        "groups/@uuid[@a]",
        "a]b",
    ],
)
def test_malformed_paths_are_api_errors(groups: ConfigTree, path: str) -> None:
    with pytest.raises(LocalError, match="malformed config path"):
        groups.get(path)


def test_node_path_must_not_name_a_value(groups: ConfigTree) -> None:
    with pytest.raises(LocalError, match="names a value"):
        groups.node("groups/@x")


def test_dump_format(groups: ConfigTree) -> None:
    tree = parse_text('top = "v";\na {\n\tx = "1";\n\tb = "n" { y = "2"; }\n}\ne { }\n')
    assert tree.dump() == (
        'a {\n\tb = "n" {\n\t\ty = "2";\n\t}\n\n\tx = "1";\n}\n\ne {\n}\n\ntop = "v";\n'
    )
    node = tree.node("a/b")
    assert node is not None
    assert node.dump() == 'b = "n" {\n\ty = "2";\n}\n\n'


def test_dump_round_trip(groups: ConfigTree) -> None:
    assert parse_text(groups.dump()) == groups


def test_trees_built_in_code_dump_and_parse_back() -> None:
    tree = ConfigTree(
        children=(
            ConfigNode("fence_virtd", values=(ConfigValue("listener", "multicast"),)),
            ConfigNode(
                "listeners",
                children=(ConfigNode("multicast", values=(ConfigValue("port", "1229"),)),),
            ),
        ),
        values=(ConfigValue("note", "multi\nline # kept"),),
    )
    assert parse_text(tree.dump()) == tree
    assert tree.get("listeners/multicast/@port") == "1229"
