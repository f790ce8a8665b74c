"""Which programs a test needs: list the missing ones, or skip the test naming them."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["missing_tools", "skip_unless_installed", "skip_unless_netns"]


def missing_tools(*names: str) -> list[str]:
    """Those of ``names`` not found on PATH (or, for absolute paths, not executable)."""
    return [name for name in names if shutil.which(name) is None]


def skip_unless_installed(*tools: str) -> None:
    """Skip the calling test, naming every one of ``tools`` that is not installed."""
    missing = missing_tools(*tools)
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def skip_unless_netns() -> None:
    """Skip the calling test unless it may create network namespaces (root and iproute2)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
