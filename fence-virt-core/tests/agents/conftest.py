"""Fixtures for the guest-agent tests.

Every run of a multicast agent (ours or the C ``fence_xvm``) happens inside a namespace made
here: even argument-error cases, in case a case turns out valid and sends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fence_virt.testing import c_suite
from fence_virt.testing.netns import NetNS, netns

OURS = str(Path(sys.executable).parent / "fence_xvm")

Runner = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture(scope="session")
def ours() -> str:
    """Our fence_xvm console script in the dev venv."""
    assert os.access(OURS, os.X_OK), f"{OURS} missing: run uv sync --all-packages"
    return OURS


@pytest.fixture(scope="session")
def c_fence_xvm() -> str:
    """The C fence_xvm (Debian fence-virt); tests using it are marked c_suite."""
    if not c_suite.have_c_suite():
        pytest.skip("the C fence-virt suite is not installed")
    return c_suite.C_FENCE_XVM


@pytest.fixture(scope="module")
def ns() -> Iterator[NetNS]:
    """A namespace with only ``lo``, shared by one test module."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    with netns("agent") as space:
        yield space


@pytest.fixture
def run(ns: NetNS) -> Runner:
    """``run(argv, stdin=None, timeout=60)`` inside the module's namespace."""

    def runner(
        argv: list[str], stdin: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        return c_suite.run_in(ns, argv, stdin, timeout)

    return runner


@pytest.fixture
def without_default_key() -> Callable[[list[str]], list[str]]:
    """Wrap argv so the program runs in a private mount namespace where the default key
    directory /etc/cluster is an empty tmpfs: tests of "no default key" do not depend on
    whether this machine has one."""

    def wrap(argv: list[str]) -> list[str]:
        if not Path("/etc/cluster").is_dir():
            return argv
        script = 'mount -t tmpfs tmpfs /etc/cluster && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]

    return wrap
