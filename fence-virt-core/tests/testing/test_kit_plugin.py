"""The kit as pytest loads it: auto-loaded everywhere, so its import must start nothing; and
the memory plugins must run in a daemon installed without pytest."""

from __future__ import annotations

import subprocess
import sys

from fence_virt.protocol import Operation, Response
from fence_virt.testing import RecordingDispatcher

IMPORT_PLUGIN = """
import asyncio, sys, threading
before = threading.active_count()
import fence_virt.testing.pytest_plugin
assert threading.active_count() == before, "threads started at import"
try:
    asyncio.get_running_loop()
except RuntimeError:
    pass
else:
    raise AssertionError("an event loop runs after import")
heavy = sorted(m for m in sys.modules if m.startswith(("fence_virt.daemon", "fence_virt.plugins")))
assert not heavy, heavy
"""

IMPORT_MEMORY = """
import sys
sys.modules["pytest"] = None  # as in an environment without pytest: importing it fails
from fence_virt.testing.memory import MemoryBackendPlugin, MemoryListenerPlugin
import fence_virt.testing
assert fence_virt.testing.__name__
"""


def test_loading_the_pytest_plugin_starts_nothing() -> None:
    subprocess.run([sys.executable, "-c", IMPORT_PLUGIN], check=True, timeout=60)


def test_the_memory_plugins_do_not_need_pytest() -> None:
    subprocess.run([sys.executable, "-c", IMPORT_MEMORY], check=True, timeout=60)


def test_the_recording_dispatcher_fixture_is_registered(
    recording_dispatcher: RecordingDispatcher,
) -> None:
    assert isinstance(recording_dispatcher, RecordingDispatcher)
    assert recording_dispatcher.response is Response.SUCCESS
    assert recording_dispatcher.calls == []
    assert Operation.OFF not in dict(recording_dispatcher.fenced)
