"""fence-virt-core's pytest plugin (the ``pytest11`` entry point ``fence_virt``).

pytest loads it wherever fence-virt-core is installed, also in plugin authors' own test runs,
so importing it starts nothing, and the fixtures it registers touch nothing outside the test:

* ``recording_dispatcher``: a fresh :class:`fence_virt.testing.RecordingDispatcher`, to start
  a listener with in a listener's own tests.

The contract suites are not fixtures: a test module opts in by subclassing them (see
:mod:`fence_virt.testing`).
"""

from __future__ import annotations

import pytest

from fence_virt.testing.dispatcher import RecordingDispatcher

__all__ = ["recording_dispatcher"]


@pytest.fixture
def recording_dispatcher() -> RecordingDispatcher:
    """A :class:`RecordingDispatcher` answering SUCCESS, listing two VMs."""
    return RecordingDispatcher()
