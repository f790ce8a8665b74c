"""Comparing a table of agent runs against the C daemon and against ours, row by row.

An outcome is what a run of an agent gave: (exit code, output text). The two sides must be
equal row by row, except the deliberate differences a test lists: for such a row, the C
side and ours must each be exactly what the list says (so a difference cannot grow or
vanish unnoticed).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Outcome", "mismatches"]

#: (exit code, output text) of one agent run
Outcome = tuple[int, str]


def mismatches(
    c: Mapping[str, Outcome],
    ours: Mapping[str, Outcome],
    different: Mapping[str, Mapping[str, Outcome]],
) -> list[str]:
    """One line per row where the sides disagree other than as ``different`` says.

    ``different``: label -> {"c": outcome, "ours": outcome}. A row of ``c`` missing from
    ``ours`` raises :class:`KeyError` (both sides run the same table).
    """
    wrong = []
    for label, theirs in c.items():
        mine, expected = ours[label], different.get(label)
        if expected is not None:
            if (theirs, mine) != (expected["c"], expected["ours"]):
                wrong.append(f"{label}: C {theirs!r}, ours {mine!r}, wanted {dict(expected)}")
        elif theirs != mine:
            wrong.append(f"{label}: C {theirs!r} != ours {mine!r}")
    return wrong
