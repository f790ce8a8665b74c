"""Property tests: garbage raises only ConfigError; any tree survives dump and parse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fence_virt.config import ConfigNode, ConfigTree, ConfigValue, parse_text
from fence_virt.errors import ConfigError

PIECES = [
    "{", "}", ";", "=", '"', '""', '"v"', '"a\nb"', '"#"', "name", "x#y", "#c", "\n", " ",
    "\t", "\r", "\r\n", "@", "[1]", "/", "\x00", "\u00e9",
]  # fmt: skip

NAME = st.from_regex(r"[A-Za-z_@/\[\]][A-Za-z0-9_#@./:\[\]-]{0,8}", fullmatch=True)
VALUE = st.text(min_size=1, max_size=12).filter(lambda text: '"' not in text)


def parses_or_config_error(text: str) -> None:
    """Either a tree that survives dump/parse, or a ConfigError located in the file."""
    error: ConfigError | None = None
    try:
        tree = parse_text(text, source="soup.conf")
    except ConfigError as caught:
        error = caught
    if error is None:
        assert parse_text(tree.dump()) == tree
    else:
        assert str(error).startswith("soup.conf:")


@settings(max_examples=400)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_token_soup_raises_only_config_error(text: str) -> None:
    parses_or_config_error(text)


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_config_error(text: str) -> None:
    parses_or_config_error(text)


values = st.lists(st.builds(ConfigValue, NAME, VALUE), max_size=3).map(tuple)
nodes = st.recursive(
    st.builds(ConfigNode, NAME, st.none() | VALUE, st.just(()), values),
    lambda children: st.builds(
        ConfigNode, NAME, st.none() | VALUE, st.lists(children, max_size=3).map(tuple), values
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(st.builds(ConfigTree, st.lists(nodes, max_size=3).map(tuple), values))
def test_dump_then_parse_is_identity(tree: ConfigTree) -> None:
    assert parse_text(tree.dump()) == tree
