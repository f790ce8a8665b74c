"""A vsock listener instance's block (``listeners { vsock { ... } }``): schema and defaults.

Keys and defaults are C's (vsock.c; c-suite-spec §1.4, §5.4): ``key_file``, ``hash``,
``auth`` and ``port`` (1229; vsock ports are 32-bit numbers). The listener binds
``VMADDR_CID_ANY``: every guest of this host (and the host's own hypervisor, if this host is
a guest itself) can connect. Five keys are ours: ``max_connections``, ``request_timeout``
(C: 1 s), ``io_timeout`` (C: 10 s), and ``replay_window`` / ``replay_state`` for the replay
memory (:class:`fence_virt.listening.ReplaySettings`). As for tcp, ``auth`` is the challenge
algorithm (C's vsock listener stores it into the ``hash`` minimum and always challenges with
sha256, §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fence_virt.config import ABSOLUTE_PATH, POSITIVE, Check, ConfigSection, at_least
from fence_virt.listening import (
    HISTORY_WINDOW,
    IO_TIMEOUT,
    MAX_CONNECTIONS,
    REPLAY_WINDOW,
    REQUEST_TIMEOUT,
    ReplaySettings,
    default_replay_state,
)
from fence_virt.listening.v2 import v2_window_problem
from fence_virt.protocol import DEFAULT_KEY_FILE, DEFAULT_PORT, HashType
from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, ProtocolMode

__all__ = ["MAX_VSOCK_PORT", "VSOCK_PORT", "VsockSection", "VsockSettings", "resolve_settings"]

#: the highest vsock port: 32 bits, without 0xFFFFFFFF (VMADDR_PORT_ANY, "any free port")
MAX_VSOCK_PORT = 0xFFFFFFFE
#: a vsock port number (``in_range`` would print the upper end as 4.29497e+09)
VSOCK_PORT = Check(lambda port: 1 <= port <= MAX_VSOCK_PORT, f"a number from 1 to {MAX_VSOCK_PORT}")


@dataclass(frozen=True)
class VsockSection:
    """The block as written."""

    key_file: Path = Path(DEFAULT_KEY_FILE)
    #: minimum hash type a request must be signed with
    hash: HashType = HashType.SHA256
    #: challenge/response algorithm; never on the wire, both sides must agree
    auth: HashType = HashType.SHA256
    port: Annotated[int, VSOCK_PORT] = DEFAULT_PORT
    max_connections: Annotated[int, at_least(1)] = MAX_CONNECTIONS
    request_timeout: Annotated[float, POSITIVE] = REQUEST_TIMEOUT
    io_timeout: Annotated[float, POSITIVE] = IO_TIMEOUT
    #: seconds every verified signature is refused again (below C's 10-s history: nothing)
    replay_window: Annotated[float, at_least(HISTORY_WINDOW)] = REPLAY_WINDOW
    #: the replay memory's state file; default ``default_replay_state(instance)``
    replay_state: Annotated[Path, ABSOLUTE_PATH] | None = None
    #: ``c`` (default), ``both`` or ``v2``: which requests are served (docs/protocol-v2.md)
    protocol: ProtocolMode = ProtocolMode.C
    #: seconds a v2 request's timestamp may differ from this host's clock
    v2_window: Annotated[float, POSITIVE] = DEFAULT_V2_WINDOW


@dataclass(frozen=True)
class VsockSettings(VsockSection):
    """A validated block."""

    #: the listener instance's name (its block's name), for logs
    name: str = "vsock"

    def describe(self) -> str:
        return f"vsock port {self.port} on any CID"

    @property
    def replay(self) -> ReplaySettings:
        """The replay window and state file (by default the instance's own)."""
        return ReplaySettings(
            self.replay_window, self.replay_state or default_replay_state(self.name)
        )


def resolve_settings(section: ConfigSection) -> VsockSettings:
    """Load and check the block. :raises fence_virt.errors.ConfigError: file:line and why."""
    raw = section.load(VsockSection)
    problem = v2_window_problem(raw.v2_window, raw.replay_window)
    if problem is not None:
        raise section.error("v2_window", problem)
    return VsockSettings(
        key_file=raw.key_file,
        hash=raw.hash,
        auth=raw.auth,
        port=raw.port,
        max_connections=raw.max_connections,
        request_timeout=raw.request_timeout,
        io_timeout=raw.io_timeout,
        replay_window=raw.replay_window,
        replay_state=raw.replay_state,
        protocol=raw.protocol,
        v2_window=raw.v2_window,
        name=section.name,
    )
