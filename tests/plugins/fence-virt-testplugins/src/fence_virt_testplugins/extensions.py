"""Two extensions for tests: a request recorder (observer) and a domain denier (authorization).

Config::

    extensions {
        recorder { file = "/tmp/requests.jsonl";     # one JSON line per finished request
                   drops = "/tmp/drops.jsonl"; }     # optional: one per dropped input
        deny { domain = "vm2"; }                     # repeatable: refuse these VMs
    }

The recorder writes from the event loop: fine for a test file on local disk, not a pattern
for a production observer (which should hand slow work to a thread or a queue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fence_virt import ConfigSection, DroppedRequest, FinishedRequest, Target, hookimpl
from fence_virt.protocol import HostState, Operation


@dataclass(frozen=True)
class RecorderConfig:
    file: Path
    drops: Path | None = None


class RecorderExtension:
    """Test observer: appends every finished request (and, with ``drops``, every dropped
    input) to a JSON-lines file."""

    def __init__(self) -> None:
        self._file: Path | None = None
        self._drops: Path | None = None

    @hookimpl
    def fence_virt_extension_configure(self, section: ConfigSection) -> bool:
        config = section.load(RecorderConfig)
        self._file, self._drops = config.file, config.drops
        return True

    @hookimpl
    def fence_virt_request_dropped(self, drop: DroppedRequest) -> None:
        if self._drops is None:
            return
        row = {
            "listener": drop.listener,
            "requester": drop.requester,
            "kind": drop.kind.value,
            "reason": drop.reason,
        }
        with self._drops.open("a") as stream:
            stream.write(json.dumps(row) + "\n")

    @hookimpl
    def fence_virt_request_finished(self, request: FinishedRequest) -> None:
        assert self._file is not None
        row = {
            "operation": request.operation.name.lower(),
            "domain": request.target.domain,
            "requester": request.target.requester,
            "listener": request.listener,
            "response": request.response.name.lower(),
            "duration": request.duration,
            "reason": request.reason,
        }
        with self._file.open("a") as stream:
            stream.write(json.dumps(row) + "\n")


@dataclass(frozen=True)
class DenyConfig:
    domain: tuple[str, ...] = ()


class DenyExtension:
    """Test authorization plugin: refuses every operation on the configured VMs."""

    def __init__(self) -> None:
        self._denied: frozenset[str] = frozenset()

    @hookimpl
    def fence_virt_extension_configure(self, section: ConfigSection) -> bool:
        self._denied = frozenset(section.load(DenyConfig).domain)
        return True

    @hookimpl
    def fence_virt_authorize(
        self, operation: Operation, target: Target, vm: HostState | None
    ) -> bool | None:
        del operation
        name = vm.domain if vm is not None else target.domain
        return False if name in self._denied else None
