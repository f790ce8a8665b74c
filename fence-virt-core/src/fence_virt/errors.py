"""Error types, sorted by who is at fault.

* :class:`LocalError` -- this program (or a plugin) used an API wrongly: a bug here.
* :class:`RemoteError` -- a peer sent something we cannot accept: log it, drop it, keep serving.
  :class:`ProtocolError` is the only exception the wire codec raises on untrusted bytes.
* :class:`UserError` -- the operator asked for something that cannot work (bad config line,
  missing key file, broken plugin). The CLI prints its message as one line and exits with
  :attr:`UserError.exit_code`; no traceback.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BackendError",
    "ConfigError",
    "FenceVirtError",
    "LocalError",
    "PluginError",
    "ProtocolError",
    "RemoteError",
    "UserError",
]


class FenceVirtError(Exception):
    """Base class of every error this project raises on purpose."""


class LocalError(FenceVirtError):
    """We misused an API (wrong argument, call out of order): a bug in this code or a plugin."""


class RemoteError(FenceVirtError):
    """A peer sent something unacceptable; the request is dropped, the daemon keeps running."""


class ProtocolError(RemoteError):
    """Bytes that do not decode: the message names the field that is wrong."""


class AuthenticationError(RemoteError):
    """A signature or challenge response does not verify (wrong key, weak hash, tampering)."""


class UserError(FenceVirtError):
    """Something the operator must fix; shown as one line, never as a traceback."""

    #: process exit status the CLI uses for this error
    exit_code: int = 1


class ConfigError(UserError):
    """A configuration file or value is wrong; ``str()`` starts with ``file:line:``.

    Exit status 255, as C's fence_virtd when its configuration does not parse (c-suite-spec
    §5.2): the unit's ``RestartPreventExitStatus=255`` then stops restarting a daemon that
    no restart can mend.
    """

    exit_code = 255

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        if path is not None and line is not None:
            where = f"{path}:{line}: "
        elif path is not None:
            where = f"{path}: "
        else:
            where = ""
        super().__init__(f"{where}{message}")


class PluginError(UserError):
    """A plugin failed to load, register or start; names the plugin and its distribution."""

    def __init__(self, message: str, *, plugin: str, distribution: str | None = None) -> None:
        self.plugin = plugin
        self.distribution = distribution
        # no distribution: the plugin is not installed, or its metadata names none
        dist = f" ({distribution})" if distribution else ""
        super().__init__(f"plugin {plugin!r}{dist}: {message}")


class BackendError(FenceVirtError):
    """A backend could not carry out an operation (hypervisor unreachable, VM lookup failed)."""
