"""Fixtures for the vmchannel listener's tests: the shared lab of the serial and vmchannel listeners
(:mod:`fence_virt_testinfra.channel_fixtures`: ``sock_dir``, ``lab``, ``private_lab``,
``daemons``, ``pty_guests``, ``c_fence_virt``).

Network safety: the serial transport uses no network; the C ``fence_virt`` is only ever run
with ``-D`` (a PTY of the test) or ``-A 127.0.0.1`` inside a test namespace.
"""

from fence_virt_testinfra.channel_fixtures import (  # noqa: F401 (fixtures, used by name)
    c_fence_virt,
    daemons,
    lab,
    private_lab,
    pty_guests,
    sock_dir,
)
