"""pytest fixtures shared by every fence-virt distribution's tests (``pytest11`` entry point
``fence_virt_testinfra``; installed in the development workspace only).

Markers: ``netns``, ``c_suite``, ``qemu`` (registered here; see :data:`MARKERS`).

Namespaces (each deleted after the test, with every process left inside it):

* ``ns``: a fresh network namespace holding only ``lo`` (:func:`.netns.netns`).
* ``ns_loop``: an asyncio loop on a thread inside ``ns`` (:class:`.setns.NetnsLoop`).
* ``netns_call``: ``netns_call(ns, func)`` runs ``func`` on a thread inside ``ns``.
* ``guest_host``: a guest and a host namespace joined by a veth (:class:`.topology.GuestHost`);
  ``guest_host_factory``: ``with guest_host_factory() as pair:`` one more such pair.

Keys and the C suite:

* ``key_file``: a random 4096-byte key, mode 0600, in the test's directory.
* ``c_suite``: skips the test unless the C fence-virt suite is installed.
* ``c_fence_xvm`` (session): the C agent's path; skips without the C suite.
* ``fence_xvm``: ``fence_xvm(ns, key, *args)`` runs the C agent inside ``ns``; the result has
  text ``stdout``/``stderr`` (:func:`.c_suite.run_c_fence_xvm`).

libvirt and QEMU:

* ``libvirtd`` (session): a private hand-started libvirtd (:mod:`.libvirtd`); its
  ``test_uri`` serves libvirt's test driver, its ``qemu_uri`` real QEMU guests.
* ``private_libvirtd``: another such daemon, for a test that stops, kills, pauses (SIGSTOP)
  or restarts it (``.stop()``, ``.kill()``, ``.pause()``, ``.resume()``, ``.start()``).
* ``qemu_guest``: a tiny running QEMU guest on ``libvirtd`` (:mod:`.qemu`), destroyed and
  undefined afterwards. Mark such tests ``@pytest.mark.qemu``.

Clocks:

* ``fake_clock``: a :class:`.faketime.FakeClock` (offset 0) in the test's directory; daemons
  started with its ``wrapper()`` read their clocks through it, and ``fake_clock.set(3600)``
  moves them an hour on while they run. Skips without Debian's libfaketime.

A fixture skips, naming what is missing, only when the programs or privileges it needs are
absent; any other failure to start is an error, never a silent pass.

State: the session sets ``$STATE_DIRECTORY`` (systemd's variable, which fence_virtd's
listeners use for their default replay state files) to a directory of its own, removed at
the end, so no test daemon reads or writes ``/var/lib/fence-virt``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fence_virt_testinfra.c_suite import C_FENCE_XVM, have_c_suite, run_c_fence_xvm, write_key
from fence_virt_testinfra.faketime import FakeClock, require_libfaketime
from fence_virt_testinfra.libvirtd import LIBVIRTD_TOOLS, Libvirtd, running_libvirtd
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.qemu import QEMU_BINARY, QemuGuest, tiny_guest
from fence_virt_testinfra.setns import NetnsLoop, in_netns
from fence_virt_testinfra.tools import skip_unless_installed, skip_unless_netns, unavailable
from fence_virt_testinfra.topology import GuestHost, guest_and_host

__all__ = [
    "MARKERS",
    "c_fence_xvm",
    "c_suite",
    "fake_clock",
    "fence_xvm",
    "guest_host",
    "guest_host_factory",
    "key_file",
    "libvirtd",
    "netns_call",
    "ns",
    "ns_loop",
    "private_libvirtd",
    "qemu_guest",
]

#: the markers fence-virt's tests use (``--strict-markers`` knows them through this plugin)
MARKERS = {
    "netns": "needs root and creates network namespaces",
    "c_suite": "runs the C fence-virt tools from Debian",
    "qemu": "starts a real QEMU guest",
    "corosync3": "starts three corosync nodes in namespaces (run them alone: -m corosync3)",
}

_guests = itertools.count(1)


#: what $STATE_DIRECTORY was before the session set it (None: unset)
_STATE_DIRECTORY = "STATE_DIRECTORY"
_saved_state_directory: list[str | None] = []


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    _saved_state_directory.append(os.environ.get(_STATE_DIRECTORY))
    os.environ[_STATE_DIRECTORY] = tempfile.mkdtemp(prefix="fvt-state-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _saved_state_directory:
        return
    shutil.rmtree(os.environ.pop(_STATE_DIRECTORY, ""), ignore_errors=True)
    saved = _saved_state_directory.pop()
    if saved is not None:
        os.environ[_STATE_DIRECTORY] = saved


# ---------------------------------------------------------------------------------------------
# namespaces


@pytest.fixture
def ns() -> Iterator[NetNS]:
    """A fresh network namespace with only ``lo`` up."""
    skip_unless_netns()
    with netns("t") as namespace:
        yield namespace


@pytest.fixture
def ns_loop(ns: NetNS) -> Iterator[NetnsLoop]:
    """An asyncio event loop on a thread inside ``ns``; closed after the test."""
    runner = NetnsLoop(ns)
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def netns_call() -> Callable[[NetNS, Callable[[], Any]], Any]:
    """``netns_call(ns, func)``: run ``func`` on a thread inside ``ns``, return its result."""
    return in_netns


@pytest.fixture
def guest_host() -> Iterator[GuestHost]:
    """A guest namespace and a host namespace joined by a veth pair."""
    skip_unless_netns()
    with guest_and_host() as pair:
        yield pair


@pytest.fixture
def guest_host_factory() -> Callable[[], contextlib.AbstractContextManager[GuestHost]]:
    """``with guest_host_factory() as pair:`` another guest/host pair."""
    skip_unless_netns()
    return guest_and_host


# ---------------------------------------------------------------------------------------------
# keys and the C suite


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A random 4096-byte key file (mode 0600) in the test's directory."""
    return write_key(tmp_path / "fence_xvm.key")


@pytest.fixture(scope="session")
def c_suite() -> None:
    """Skip (saying why) when the C suite is not installed."""
    if not have_c_suite():
        unavailable(
            "the C fence-virt suite is missing: install Debian fence-virt, fence-virtd, coreutils"
        )


@pytest.fixture(scope="session")
def c_fence_xvm(c_suite: None) -> str:
    """The C fence_xvm (Debian fence-virt); tests using it are marked c_suite."""
    return C_FENCE_XVM


@pytest.fixture
def fence_xvm(c_suite: None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``fence_xvm(ns, key, *args, timeout=60)``: run the C agent inside a namespace."""
    return run_c_fence_xvm


@pytest.fixture
def fake_clock(tmp_path: Path) -> FakeClock:
    """A clock offset (0 s to begin with) for the daemons started under its ``wrapper()``."""
    return FakeClock(tmp_path / "faketime.offset", require_libfaketime())


# ---------------------------------------------------------------------------------------------
# libvirt and QEMU


@pytest.fixture(scope="session")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    """A private libvirtd for the whole session (test driver and QEMU driver)."""
    skip_unless_installed(*LIBVIRTD_TOOLS)
    with running_libvirtd(tmp_path_factory.mktemp("libvirtd")) as daemon:
        yield daemon


@pytest.fixture
def private_libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    """A private libvirtd for one test, which may stop, kill and restart it."""
    skip_unless_installed(*LIBVIRTD_TOOLS)
    with running_libvirtd(tmp_path_factory.mktemp("libvirtd")) as daemon:
        yield daemon


@pytest.fixture
def qemu_guest(libvirtd: Libvirtd) -> Iterator[QemuGuest]:
    """A running tiny QEMU guest (KVM if usable, else TCG) with a name unique to the test."""
    skip_unless_installed(QEMU_BINARY)
    name = f"fvt-guest-{os.getpid()}-{next(_guests)}"
    with tiny_guest(libvirtd.qemu_uri, name, pid_dir=libvirtd.qemu_pid_dir) as guest:
        yield guest
