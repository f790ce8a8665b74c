"""An example third-party fence_virtd backend: VMs kept in a JSON state file.

Entry point ``fence_virt.backends: example`` ->
:class:`~fence_virt_backend_example.plugin.ExampleBackendPlugin`. The state file's shape and
locking: :mod:`fence_virt_backend_example.state`.
"""

from __future__ import annotations

from fence_virt_backend_example.plugin import (
    ExampleBackend,
    ExampleBackendPlugin,
    ExampleSettings,
)
from fence_virt_backend_example.state import StateFile, VmState, write_state

__all__ = [
    "ExampleBackend",
    "ExampleBackendPlugin",
    "ExampleSettings",
    "StateFile",
    "VmState",
    "write_state",
]
