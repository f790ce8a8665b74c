"""pytest fixtures for the serial and vmchannel listeners' tests, over
:mod:`fence_virt_testinfra.channel_lab`. A test directory's ``conftest.py`` imports the ones
it uses (``from fence_virt_testinfra.channel_fixtures import lab, daemons``); they are not in
the workspace-wide plugin because they need libvirt-python and socat.

* ``sock_dir``: a short directory for UNIX sockets, removed afterwards;
* ``lab``: domains with guest sockets on the session's hand-started libvirtd (test driver);
  ``private_lab``: the same on a libvirtd of the test's own, which it may restart;
* ``daemons``: our fence_virtd (in the test namespace ``ns``) and the C fence_virtd's serial
  listener, stopped by PID;
* ``pty_guests``: socat PTYs on domains' sockets, for the C ``fence_virt -D``;
* ``c_fence_virt``: ``c_fence_virt(tty, *args)``, the C agent on such a PTY (``-D``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.channel_lab import Daemons, Lab, PtyGuests
from fence_virt_testinfra.channels import run_c_fence_virt
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.tools import skip_unless_installed

__all__ = ["c_fence_virt", "daemons", "lab", "private_lab", "pty_guests", "sock_dir"]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A fresh directory ``/tmp/fvsXXXXXXXX``: socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="fvs", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def lab(libvirtd: Libvirtd, sock_dir: Path) -> Iterator[Lab]:
    the_lab = Lab(libvirtd, sock_dir)
    try:
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture
def private_lab(private_libvirtd: Libvirtd, sock_dir: Path) -> Iterator[Lab]:
    """A lab on a libvirtd of the test's own, which the test may restart."""
    the_lab = Lab(private_libvirtd, sock_dir)
    try:
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture
def daemons(tmp_path: Path, ns: NetNS) -> Iterator[Daemons]:
    with contextlib.ExitStack() as stack:
        yield Daemons(tmp_path, stack, ns)


@pytest.fixture
def c_fence_virt(c_suite: None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``c_fence_virt(tty, *args)``: the C agent on the PTY ``tty`` (``-D``), output as text."""
    skip_unless_installed("socat")

    def run(tty: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_c_fence_virt("-D", str(tty), *args, timeout=timeout)

    return run


@pytest.fixture
def pty_guests(tmp_path: Path) -> Iterator[PtyGuests]:
    skip_unless_installed("socat")
    with contextlib.ExitStack() as stack:
        yield PtyGuests(stack, tmp_path)
