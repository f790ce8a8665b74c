"""pytest fixtures shared by every fence-virt distribution (the ``pytest11`` entry point).

* ``libvirtd`` (session): a private hand-started libvirtd (:mod:`fence_virt.testing.libvirtd`);
  its ``test_uri`` serves libvirt's test driver, its ``qemu_uri`` real QEMU guests.
* ``private_libvirtd`` (function): another such daemon, for a test that stops, kills or
  restarts it (``.stop()``, ``.kill()``, ``.start()``).
* ``qemu_guest`` (function): a tiny running QEMU guest on that daemon
  (:mod:`fence_virt.testing.qemu`), destroyed and undefined afterwards. Mark such tests
  ``@pytest.mark.qemu``.

Both skip, naming what is missing, only when the programs they need are not installed; any
other failure to start is an error, never a silent pass.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from fence_virt.testing.libvirtd import LIBVIRTD_TOOLS, Libvirtd, missing_tools, running_libvirtd
from fence_virt.testing.qemu import QEMU_BINARY, QemuGuest, tiny_guest

__all__ = ["libvirtd", "private_libvirtd", "qemu_guest"]

_guests = itertools.count(1)


def _skip_unless_installed(*tools: str) -> None:
    missing = missing_tools(*tools)
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


@pytest.fixture(scope="session")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    """A private libvirtd for the whole session (test driver and QEMU driver)."""
    _skip_unless_installed(*LIBVIRTD_TOOLS)
    with running_libvirtd(tmp_path_factory.mktemp("libvirtd")) as daemon:
        yield daemon


@pytest.fixture
def private_libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    """A private libvirtd for one test, which may stop, kill and restart it."""
    _skip_unless_installed(*LIBVIRTD_TOOLS)
    with running_libvirtd(tmp_path_factory.mktemp("libvirtd")) as daemon:
        yield daemon


@pytest.fixture
def qemu_guest(libvirtd: Libvirtd) -> Iterator[QemuGuest]:
    """A running tiny QEMU guest (KVM if usable, else TCG) with a name unique to the test."""
    _skip_unless_installed(QEMU_BINARY)
    name = f"fvt-guest-{os.getpid()}-{next(_guests)}"
    with tiny_guest(libvirtd.qemu_uri, name, pid_dir=libvirtd.qemu_pid_dir) as guest:
        yield guest
