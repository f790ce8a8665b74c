"""Lexer and parser: what the C grammar accepts, our deviations, and exact error locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.config import MAX_DEPTH, ConfigNode, ConfigValue, load_file, parse_text
from fence_virt.errors import ConfigError, UserError


def fails(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_text(text, source="fence_virt.conf")
    return info.value


# -- accepted syntax ---------------------------------------------------------------------------


def test_nested_blocks_values_and_lines() -> None:
    tree = parse_text(
        'fence_virtd {\n\tlistener = "multicast";\n}\nlisteners {\n\tmulticast {\n'
        '\t\tport = "1229";\n\t}\n}\n',
        source="x.conf",
    )
    assert tree.children == (
        ConfigNode("fence_virtd", values=(ConfigValue("listener", "multicast"),)),
        ConfigNode(
            "listeners",
            children=(ConfigNode("multicast", values=(ConfigValue("port", "1229"),)),),
        ),
    )
    listeners = tree.children[1]
    assert (listeners.line, listeners.source) == (4, "x.conf")
    assert listeners.children[0].values[0].line == 6
    assert listeners.children[0].source == "x.conf"


def test_comments_after_tokens() -> None:
    tree = parse_text('a { # open\n\tb = "1"; # value\n} # close\n# last')
    assert tree.get("a/@b") == "1"


def test_hash_inside_quotes_and_inside_words_is_not_a_comment() -> None:
    tree = parse_text('k#1 = "a # b";\nk2 = "#x";')
    assert tree.get("@k#1") == "a # b"
    assert tree.get("@k2") == "#x"


def test_multi_line_value_counts_lines() -> None:
    tree = parse_text('a = "one\ntwo\nthree";\nb = "x";\n')
    assert tree.get("@a") == "one\ntwo\nthree"
    b = tree.entry("b")
    assert b is not None
    assert b.line == 4


def test_tokens_need_no_blanks_between_them() -> None:
    tree = parse_text('a{b="1";c="2"{d="3";}}')
    assert tree.get("a/@b") == "1"
    assert tree.get("a/c") == "2"
    assert tree.get("a/c/@d") == "3"


def test_node_with_value_and_empty_blocks() -> None:
    tree = parse_text('g = "web" { }\nempty {}\n')
    assert tree.children == (ConfigNode("g", "web"), ConfigNode("empty"))


def test_quoted_values_keep_everything_but_quotes() -> None:
    tree = parse_text('uri = "qemu+ssh://h/system?a=1;b={x}\t ";')
    assert tree.get("@uri") == "qemu+ssh://h/system?a=1;b={x}\t "


def test_duplicates_last_wins_and_all_are_kept() -> None:
    tree = parse_text('a { port = "1"; PORT = "2"; }\na { port = "3"; }\n')
    assert tree.get("a/@port") == "3"
    assert tree.get("a[2]/@port") == "2"
    assert tree.children[0].all_values("port") == ("1", "2")


def test_case_insensitive_lookups() -> None:
    tree = parse_text('Listeners { MultiCast { Key_File = "/k"; } }')
    assert tree.get("listeners/multicast/@key_file") == "/k"
    assert tree.get("LISTENERS/MULTICAST/@KEY_FILE") == "/k"


def test_crlf_line_endings_are_accepted() -> None:
    tree = parse_text('a {\r\n\tb = "1";\r\n\tc = "x\r\ny";\r\n}\r\nd = "2";\r\n')
    assert tree.get("a/@b") == "1"
    assert tree.get("a/@c") == "x\r\ny"
    d = tree.entry("d")
    assert d is not None
    assert d.line == 6


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "  \t\r\n# a\n# b"])
def test_empty_or_comment_only_file_is_an_empty_config(text: str) -> None:
    tree = parse_text(text)
    assert (tree.children, tree.values) == ((), ())
    assert tree.dump() == ""


def test_load_file_reads_bytes_faithfully(tmp_path: Path) -> None:
    path = tmp_path / "f.conf"
    path.write_bytes(b'a = "caf\xc3\xa9 \xff";\r\n')
    tree = load_file(path)
    assert tree.get("@a") == "caf\u00e9 \udcff"
    assert tree.source == str(path)


def test_load_file_missing_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    with pytest.raises(ConfigError) as info:
        load_file(missing)
    assert str(info.value) == f"{missing}: cannot read config file: No such file or directory"
    assert isinstance(info.value, UserError)


# -- errors ------------------------------------------------------------------------------------


def test_missing_semicolon() -> None:
    text = 'listeners {\n\tmulticast {\n\t\tport = "1229"\n\t}\n}\n'
    error = fails(text)
    assert str(error) == (
        "fence_virt.conf:3: expected ';' after value of 'port', found '}' on line 4"
    )
    assert (error.path, error.line) == ("fence_virt.conf", 3)


def test_missing_semicolon_same_line() -> None:
    assert str(fails('a {\n\tport = "1229" }\n')) == (
        "fence_virt.conf:2: expected ';' after value of 'port', found '}'"
    )


def test_missing_closing_brace() -> None:
    text = 'fence_virtd {\n\tlistener = "x";\n}\nlisteners {\n\tmulticast {\n\t}\n'
    assert str(fails(text)) == (
        "fence_virt.conf:4: block 'listeners' is never closed: "
        "expected '}', found end of file (line 7)"
    )


def test_stray_closing_brace() -> None:
    assert str(fails('a {\n\tb = "1";\n}\n}\n')) == (
        "fence_virt.conf:4: unexpected '}': no block is open"
    )


def test_unterminated_string_names_the_line_where_it_starts() -> None:
    error = fails('a {\n\tb = "1";\n\tc = "never closed;\n}\n\n')
    assert str(error) == (
        "fence_virt.conf:3: unterminated quoted value: no closing '\"' before end of file"
    )


def test_unterminated_string_swallowing_later_lines_points_at_the_missing_quote() -> None:
    error = fails('a = "abc;\nb = "x";\n')
    assert str(error) == (
        "fence_virt.conf:2: expected ';' after value of 'a' "
        "(quoted from line 1 to 2: is a '\"' missing?), found name 'x'"
    )


def test_equals_without_value() -> None:
    assert str(fails("a {\n\tport = ;\n}")) == (
        "fence_virt.conf:2: expected a quoted value after 'port =', found ';'"
    )


def test_equals_at_end_of_file() -> None:
    assert str(fails("a {\n\tport =\n")) == (
        "fence_virt.conf:2: expected a quoted value after 'port =', found end of file on line 3"
    )


def test_unquoted_value() -> None:
    assert str(fails("port = 1229;")) == (
        "fence_virt.conf:1: expected a quoted value after 'port =' "
        "(values must be in double quotes), found name '1229'"
    )


def test_value_without_equals() -> None:
    assert str(fails('a {\n\tport "1229";\n}')) == (
        "fence_virt.conf:2: expected '=' or '{' after 'port', found value \"1229\""
    )


def test_name_alone_at_end_of_file() -> None:
    assert str(fails('a = "1";\nb\n')) == (
        "fence_virt.conf:2: expected '=' or '{' after 'b', found end of file on line 3"
    )


def test_semicolon_after_closing_brace_is_rejected_as_in_c() -> None:
    assert str(fails("a {\n};\n")) == (
        "fence_virt.conf:2: expected a name to start a 'key = \"value\";' or a block, found ';'"
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('\n\nport = "";', 3, 'empty quoted value "" is not allowed'),
        ('a = "1";\n"', 2, "unterminated quoted value"),
        (
            'a = "1";\n= "2";',
            2,
            "expected a name to start a 'key = \"value\";' or a block, found '='",
        ),
        ('"orphan";', 1, "expected a name to start a 'key = \"value\";' or a block, found value"),
        ("{ }", 1, "found '{'"),
        ('a == "1";', 1, "expected a quoted value after 'a =', found '='"),
        ('a = "1" = "2";', 1, "expected ';' after value of 'a', found '='"),
        ('a = "1" "2";', 1, "expected ';' after value of 'a', found value \"2\""),
        ('a b = "1";', 1, "expected '=' or '{' after 'a', found name 'b'"),
        ("a { b { } ", 1, "block 'a' is never closed"),
    ],
)
def test_unknown_sequences(text: str, line: int, message: str) -> None:
    error = fails(text)
    assert error.line == line
    assert message in str(error)
    assert str(error).startswith(f"fence_virt.conf:{line}: ")


def test_long_values_are_shortened_in_messages() -> None:
    error = fails('a "' + "x" * 100 + '";')
    assert 'found value "' + "x" * 37 + '..."' in str(error)


def test_nesting_limit() -> None:
    deep = "a {" * MAX_DEPTH + "}" * MAX_DEPTH
    assert parse_text(deep).node("/".join(["a"] * MAX_DEPTH)) is not None
    error = fails("a {\n" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1))
    assert (
        str(error) == f"fence_virt.conf:{MAX_DEPTH + 1}: blocks nested more than {MAX_DEPTH} deep"
    )


def test_errors_without_a_source_have_only_the_message() -> None:
    with pytest.raises(ConfigError) as info:
        parse_text("}")
    assert str(info.value) == "unexpected '}': no block is open"
