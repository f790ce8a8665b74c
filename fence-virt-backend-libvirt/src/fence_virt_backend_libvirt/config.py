"""The ``backends { libvirt { ... } }`` block.

Keys::

    uri = "qemu:///system";        # required; may repeat (each one is another hypervisor)
    uri1 = "qemu+ssh://b/system";  # C's numbered form: uri1, uri2, ... up to the first gap
    reboot_timeout = "30";         # seconds to wait for "really off" and "really running"
    off_at_qemu_exit = "yes";      # local QEMU guests: off once the QEMU process has exited
    qemu_pid_dir = "/run/libvirt/qemu";  # where libvirt's NAME.pid files are (default: by URI)
    reboot_answer = "running";     # "running": answer once it runs again; "off": once off
    unknown_vm = "fail";           # or "silent": no answer at all for a VM not on these URIs

URIs are tried in file order: every ``uri`` entry, then ``uri1``, ``uri2``, ... C reads only
the last ``uri`` and stops silently at the first missing number; here a number after a gap is
an error, because the hypervisor it names would silently never be fenced.

``unknown_vm``: what a multicast request for a VM none of the URIs has gets. ``fail`` (the
default, C's behaviour) answers failure at once -- right for one host, where a silent host
would leave the agent waiting its whole timeout (30 s) to report the same failure. With
several hosts in one multicast group every host receives each request and ``fence_xvm`` takes
the first that connects back, so a host without the VM may answer before the one that has
it (c-suite-spec §9.2 #23); set ``silent`` on every host there: only the host with the VM
answers, and if no host has it the agent times out, which Pacemaker also counts as a
failure. Stream listeners (tcp, vsock, serial) always answer: their client asked one host.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from pathlib import Path

from fence_virt.config import ConfigNode, load_section
from fence_virt.errors import ConfigError
from fence_virt_libvirt import RebootAnswer, qemu_pid_dir

__all__ = ["DEFAULT_REBOOT_TIMEOUT", "WHERE", "LibvirtSettings", "UnknownVm", "load_settings"]


class UnknownVm(enum.Enum):
    """``unknown_vm``: answer a request for a VM no URI has, or stay silent (multicast)."""

    FAIL = "fail"
    SILENT = "silent"


WHERE = "backends/libvirt"
#: seconds; a QEMU destroy takes up to ~10 s before libvirt escalates to SIGKILL
DEFAULT_REBOOT_TIMEOUT = 30.0

# uri1, uri2, ... exactly as C builds the key with "uri%d" (so "uri0" and "uri01" are not URIs)
_NUMBERED = re.compile(r"uri([1-9][0-9]*)", re.IGNORECASE)


@dataclass(frozen=True)
class _Section:
    uri: tuple[str, ...]
    reboot_timeout: float = DEFAULT_REBOOT_TIMEOUT
    off_at_qemu_exit: bool = True
    qemu_pid_dir: Path | None = None
    reboot_answer: RebootAnswer = RebootAnswer.RUNNING
    #: a multicast request for a VM no URI has: ``fail`` answers it (C), ``silent`` sends
    #: nothing, so the host of the group that has the VM answers (set it on every host)
    unknown_vm: UnknownVm = UnknownVm.FAIL


@dataclass(frozen=True)
class LibvirtSettings:
    """The validated block: URIs in lookup order, how long to wait for a state (seconds),
    whether off may be answered at a local QEMU process's exit (``docs/fencing-point.md``),
    the pid directory that overrides the one each local URI implies, and when a reboot
    answers."""

    uris: tuple[str, ...]
    reboot_timeout: float = DEFAULT_REBOOT_TIMEOUT
    #: a multicast request for a VM no URI has: answered (fail) or not at all (silent)
    unknown_vm: UnknownVm = UnknownVm.FAIL
    off_at_qemu_exit: bool = True
    qemu_pid_dir: Path | None = None
    reboot_answer: RebootAnswer = RebootAnswer.RUNNING

    def qemu_pid_dirs(self) -> dict[str, Path]:
        """URI -> pid directory for each URI whose off may be answered at its QEMU process's
        exit: none if ``off_at_qemu_exit`` is off, else the local QEMU URIs
        (:func:`fence_virt_libvirt.qemu_pid_dir`)."""
        if not self.off_at_qemu_exit:
            return {}
        dirs = {uri: qemu_pid_dir(uri, self.qemu_pid_dir) for uri in self.uris}
        return {uri: path for uri, path in dirs.items() if path is not None}


def load_settings(section: ConfigNode | None, *, source: str | None = None) -> LibvirtSettings:
    """Read and check the block; :class:`ConfigError` (with file:line) if it is wrong."""
    numbered = _numbered_uris(section) if section is not None else ()
    plain = _without_numbered(section) if section is not None else None
    loaded = load_section(plain, _Section, where=WHERE, source=source)
    if not loaded.reboot_timeout > 0:
        line = _line_of(section, "reboot_timeout")
        raise ConfigError(
            f"reboot_timeout in {WHERE} must be a positive number of seconds, "
            f"not {loaded.reboot_timeout:g}",
            path=section.source if section is not None else source,
            line=line,
        )
    uris = (*loaded.uri, *numbered)
    if any(not uri.strip() for uri in uris):
        # libvirt would open its *default* hypervisor for a blank URI: never guess
        raise ConfigError(
            f"blank uri in {WHERE}",
            path=section.source if section is not None else source,
            line=section.line if section is not None else None,
        )
    return LibvirtSettings(
        uris=tuple(dict.fromkeys(uris)),
        reboot_timeout=loaded.reboot_timeout,
        unknown_vm=loaded.unknown_vm,
        off_at_qemu_exit=loaded.off_at_qemu_exit,
        qemu_pid_dir=loaded.qemu_pid_dir,
        reboot_answer=loaded.reboot_answer,
    )


def _numbered_uris(section: ConfigNode) -> tuple[str, ...]:
    indices = {
        int(match[1]): entry
        for entry in section.values
        if (match := _NUMBERED.fullmatch(entry.key)) is not None
    }
    found: list[str] = []
    index = 1
    while index in indices:
        found.append(_last(section, f"uri{index}"))
        index += 1
    stray = sorted(i for i in indices if i > index)
    if stray:
        entry = indices[stray[0]]
        raise ConfigError(
            f"{entry.key} in {WHERE} would be ignored: uri{index} is missing "
            "(numbered URIs are read from uri1 up to the first gap)",
            path=section.source,
            line=entry.line or None,
        )
    return tuple(found)


def _last(section: ConfigNode, key: str) -> str:
    entry = section.entry(key)
    assert entry is not None
    return entry.value


def _without_numbered(section: ConfigNode) -> ConfigNode:
    kept = tuple(v for v in section.values if _NUMBERED.fullmatch(v.key) is None)
    return dataclasses.replace(section, values=kept)


def _line_of(section: ConfigNode | None, key: str) -> int | None:
    entry = section.entry(key) if section is not None else None
    return entry.line or None if entry is not None else None
