"""The example's "hypervisor": VMs kept in a JSON state file.

The file is the single source of truth, so anything else (a test, an administrator with
``jq``) can read what the backend really did. Its shape, in UTF-8 JSON::

    {"vms": {"vm1": {"uuid": "8c1f...-...", "running": true, "boots": 3}, ...}}

``uuid`` is a lower-case hyphenated UUID, ``running`` the power state and ``boots`` how many
times the VM was powered on (a reboot raises it, so a reboot can be told from doing nothing).
Every change is a read-modify-write under an exclusive ``flock(2)`` on a ``.lock`` file beside
it, written to a temporary file and renamed over the old one: readers without the lock always
see a whole file, and several daemons sharing one file never lose a change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fence_virt.errors import BackendError

__all__ = ["RUNNING", "SHUTOFF", "StateFile", "VmState", "write_state"]

#: virDomainState numbers that a host list carries (fence_virt.protocol.HostState.state)
RUNNING, SHUTOFF = 1, 5


@dataclass(frozen=True)
class VmState:
    """One VM as the file records it."""

    name: str
    uuid: str
    running: bool
    boots: int


def write_state(path: Path, vms: dict[str, bool]) -> None:
    """Create ``path`` with the VMs ``{name: running}``, each with a fresh random UUID.

    What an administrator (or a test) does once before pointing the backend at the file.
    """
    table = {
        name: {"uuid": str(uuid.uuid4()), "running": on, "boots": int(on)}
        for name, on in vms.items()
    }
    path.write_text(json.dumps({"vms": table}, indent=2) + "\n")


class StateFile:
    """Reads and changes the state file at ``path``; safe from several threads and processes.

    :raises BackendError: from every method when the file is missing, unreadable or not of
        the shape above (the daemon answers ``FAIL`` and logs it with the plugin's name).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        """Why the file cannot be used (text for an administrator), or ``None``."""
        try:
            self._read()
        except BackendError as exc:
            return str(exc)
        return None

    def vms(self) -> list[VmState]:
        """Every VM, by name."""
        table = self._read()
        return [_vm(name, table[name]) for name in sorted(table)]

    def find(self, domain: str) -> VmState | None:
        """The VM named ``domain`` or whose UUID ``domain`` spells (any case), or ``None``."""
        folded = domain.lower()
        for vm in self.vms():
            if domain == vm.name or folded == vm.uuid:
                return vm
        return None

    def set_power(self, name: str, *, on: bool) -> VmState:
        """Record VM ``name`` as powered on/off (a power-on counts a boot); returns the VM as
        the file holds it afterwards, read back from disk."""

        def change(record: dict[str, Any]) -> None:
            if on and not record["running"]:
                record["boots"] = int(record["boots"]) + 1
            record["running"] = on

        self._update(name, change)
        found = self.find(name)
        if found is None:
            raise BackendError(f"{self.path}: VM {name} vanished while powering it")
        return found

    def _update(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        with self._locked():
            document = self._load()
            record = document["vms"].get(name)
            if not isinstance(record, dict):
                raise BackendError(f"{self.path}: no VM {name}")
            change(record)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(document, indent=2) + "\n")
            os.replace(temporary, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock, lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, Any]:
        table: dict[str, Any] = self._load()["vms"]
        for name, record in table.items():
            _vm(name, record)
        return table

    def _load(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text())
        except OSError as exc:
            raise BackendError(f"state file {self.path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise BackendError(f"state file {self.path}: not JSON: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("vms"), dict):
            raise BackendError(f'state file {self.path}: expected {{"vms": {{...}}}}')
        return document


def _vm(name: str, record: object) -> VmState:
    """One record checked. :raises BackendError: a field is missing or of the wrong type."""
    if not isinstance(record, dict):
        raise BackendError(f"state file: VM {name}: expected an object")
    vm_uuid, running, boots = record.get("uuid"), record.get("running"), record.get("boots")
    if not isinstance(vm_uuid, str) or not isinstance(running, bool) or type(boots) is not int:
        raise BackendError(f"state file: VM {name}: needs uuid (text), running (bool), boots")
    return VmState(name, vm_uuid.lower(), running, boots)
