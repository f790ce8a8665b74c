"""Numbers parse like glibc's strtol(s, &end, 0) / atoi(s) (c-suite-spec §4.2).

Expected values are what C gives; the C-suite comparison in test_agent_cli.py runs some of
the same strings through the real agent.
"""

from __future__ import annotations

import pytest

from fence_virt.agents.numbers import atoi, c_int, strtol


@pytest.mark.parametrize(
    ("text", "value", "complete"),
    [
        ("1229", 1229, True),
        ("0x4cd", 1229, True),
        ("0X4CD", 1229, True),
        ("02315", 1229, True),
        ("0", 0, True),
        ("", 0, True),  # no digits and end == start: *end is the NUL
        ("  12", 12, True),
        ("\t\n+12", 12, True),
        ("-12", -12, True),
        ("12 ", 12, False),
        ("   ", 0, False),  # no digits: end points at the first blank
        ("-", 0, False),
        ("0x", 0, False),  # "0" converts, "x" is left over
        ("0xg", 0, False),
        ("08", 0, False),  # octal stops at 8
        ("1e3", 1, False),
        ("abc", 0, False),
        ("99999999999999999999999", 2**63 - 1, True),  # clamped to LONG_MAX
        ("-99999999999999999999999", -(2**63), True),
    ],
)
def test_strtol_base_0(text: str, value: int, complete: bool) -> None:
    assert strtol(text) == (value, complete)


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), (" -4x", -4), ("x", 0), ("", 0), ("010", 10), ("0x10", 0), ("4294967297", 1)],
)
def test_atoi_is_decimal_and_wraps_like_the_int_cast(text: str, value: int) -> None:
    assert atoi(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("30", 30), ("0x1e", 30), ("036", 30), ("-1", -1), ("2147483647", 2**31 - 1)],
)
def test_c_int_accepts_whole_int_sized_numbers(text: str, value: int) -> None:
    assert c_int(text) == value


@pytest.mark.parametrize("text", ["30s", "2147483648", "4294967326", "-2147483649", " ", "0x"])
def test_c_int_refuses_leftovers_and_values_c_would_truncate(text: str) -> None:
    assert c_int(text) is None
