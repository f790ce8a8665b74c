"""An in-memory listener and backend, as real entry-point plugins for tests.

* :class:`MemoryBackendPlugin` / :class:`MemoryBackend`: VMs in a table
  (:class:`MemoryMachines`) that the backend powers and reads back; ``stuck`` VMs never
  change state. Registered as ``fence_virt.backends: memory`` by the unpublished
  fence-virt-testplugins distribution of this repository; a plugin author's tests may
  register it the same way, or build it directly (``MemoryBackendPlugin(machines)``).
* :class:`MemoryListenerPlugin` / :class:`MemoryListener`: requests as text lines on a UNIX
  socket, without authentication; :func:`ask`, :func:`fence` and :func:`send_line` are its
  client.

Nothing here imports pytest: a daemon installed with only core and the test plugins runs them.
"""

from __future__ import annotations

from fence_virt.testing.memory.backend import (
    MemoryBackend,
    MemoryBackendConfig,
    MemoryBackendPlugin,
    load_memory_config,
)
from fence_virt.testing.memory.client import ask, fence, send_line
from fence_virt.testing.memory.listener import (
    LIST_WORD,
    OPERATION_WORDS,
    MemoryListener,
    MemoryListenerConfig,
    MemoryListenerPlugin,
)
from fence_virt.testing.memory.machines import RUNNING, SHUTOFF, MemoryMachines, machine_uuid

__all__ = [
    "LIST_WORD",
    "OPERATION_WORDS",
    "RUNNING",
    "SHUTOFF",
    "MemoryBackend",
    "MemoryBackendConfig",
    "MemoryBackendPlugin",
    "MemoryListener",
    "MemoryListenerConfig",
    "MemoryListenerPlugin",
    "MemoryMachines",
    "ask",
    "fence",
    "load_memory_config",
    "machine_uuid",
    "send_line",
]
