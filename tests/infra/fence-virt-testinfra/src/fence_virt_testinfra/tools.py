"""Which programs a test needs: list the missing ones, or skip the test naming them.

A skip can hide a failure: under ``scripts/test`` (which installs every tool the tests need,
then exports ``FENCE_VIRT_NO_SKIP=1``), and wherever ``CI=true`` (CI runs scripts/test, but
a CI job calling pytest directly must not turn a missing tool into a green run), a test that
finds something missing that the bootstrap provides FAILS instead of skipping
(:func:`unavailable`). Run by hand, pytest skips it, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

__all__ = [
    "NO_SKIP_VARIABLE",
    "missing_tools",
    "no_skips",
    "skip_unless_installed",
    "skip_unless_netns",
    "unavailable",
]

#: set (non-empty) by scripts/test: what the bootstrap installs must be there
NO_SKIP_VARIABLE = "FENCE_VIRT_NO_SKIP"


def no_skips() -> bool:
    """True under scripts/test (:data:`NO_SKIP_VARIABLE`) and in CI (``CI=true``)."""
    return bool(os.environ.get(NO_SKIP_VARIABLE)) or os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test for ``reason`` -- or fail it, under scripts/test or in CI."""
    if no_skips():
        pytest.fail(f"{reason} (scripts/test installs it: a skip here would hide a failure)")
    pytest.skip(reason)


def missing_tools(*names: str) -> list[str]:
    """Those of ``names`` not found on PATH (or, for absolute paths, not executable)."""
    return [name for name in names if shutil.which(name) is None]


def skip_unless_installed(*tools: str) -> None:
    """Skip the calling test, naming every one of ``tools`` that is not installed."""
    missing = missing_tools(*tools)
    if missing:
        unavailable(f"not installed: {', '.join(missing)}")


def skip_unless_netns() -> None:
    """Skip the calling test unless it may create network namespaces (root and iproute2)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("network namespaces need root and iproute2")
