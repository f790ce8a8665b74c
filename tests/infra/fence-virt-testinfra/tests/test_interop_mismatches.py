"""The row comparison the interop tables rest on: a difference is reported unless listed, and
a listed difference must be exactly as listed on both sides."""

from __future__ import annotations

from fence_virt_testinfra.interop import mismatches

ON, OFF, FAILED = (0, "Status: ON\n"), (2, "Status: OFF\n"), (1, "Operation failed\n")


def test_equal_rows_pass_and_unlisted_differences_are_reported() -> None:
    assert mismatches({"a": ON, "b": OFF}, {"a": ON, "b": OFF}, {}) == []
    assert mismatches({"a": ON}, {"a": OFF}, {}) == [f"a: C {ON!r} != ours {OFF!r}"]


def test_a_listed_difference_must_hold_exactly_on_both_sides() -> None:
    different = {"a": {"c": ON, "ours": FAILED}}
    assert mismatches({"a": ON}, {"a": FAILED}, different) == []
    # the difference vanished (ours now agrees with C): reported, not silently accepted
    assert len(mismatches({"a": ON}, {"a": ON}, different)) == 1
    # C changed
    assert len(mismatches({"a": OFF}, {"a": FAILED}, different)) == 1
