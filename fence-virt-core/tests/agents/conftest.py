"""Fixtures for the guest-agent tests.

Every run of a multicast agent (ours or the C ``fence_xvm``) happens inside a namespace made
here: even argument-error cases, in case a case turns out valid and sends. The C agent
(``c_fence_xvm``) and the namespace helpers come from :mod:`fence_virt_testinfra`.

``fence_virt`` (ours: ``ours_virt``, C: ``c_fence_virt``) runs only with an explicit ``-T``
(or ``ipaddr=``) inside such a namespace, never with ``-S``: without a target the C agent
connects to 10.0.2.179, and a vsock connect leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra import c_suite
from fence_virt_testinfra.c_tcp import C_FENCE_VIRT, have_c_fence_virt
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.ours import FENCE_XVM
from fence_virt_testinfra.tools import skip_unless_netns, unavailable

Runner = Callable[..., subprocess.CompletedProcess[bytes]]
#: our fence_virt console script beside fence_xvm in the dev venv
FENCE_VIRT = str(Path(FENCE_XVM).parent / "fence_virt")


@pytest.fixture(scope="session")
def ours() -> str:
    """Our fence_xvm console script in the dev venv."""
    assert os.access(FENCE_XVM, os.X_OK), f"{FENCE_XVM} missing: run uv sync --all-packages"
    return FENCE_XVM


@pytest.fixture(scope="session")
def ours_virt() -> str:
    """Our fence_virt console script in the dev venv."""
    assert os.access(FENCE_VIRT, os.X_OK), f"{FENCE_VIRT} missing: run uv sync --all-packages"
    return FENCE_VIRT


@pytest.fixture(scope="session")
def c_fence_virt() -> str:
    """The C fence_virt; skips without the C suite. Run it with an explicit -T only."""
    if not have_c_fence_virt():
        unavailable("the C fence-virt suite (fence_virt, fence_virtd, plugins) is not installed")
    return C_FENCE_VIRT


@pytest.fixture(scope="module")
def ns() -> Iterator[NetNS]:
    """A namespace with only ``lo``, shared by one test module (the agents leave nothing
    behind in it, and a module's many short runs need no fresh one each)."""
    skip_unless_netns()
    with netns("agent") as space:
        yield space


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random key file (mode 0600), shared by one test module."""
    return c_suite.write_key(tmp_path_factory.mktemp("key") / "fence_xvm.key")


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
