"""The daemon's own configuration: which file, the ``fence_virtd { ... }`` block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fence_virt.config import POSITIVE, ConfigTree, load_section, parse_text
from fence_virt.config.sources import ConfigSource, FileSource
from fence_virt.daemon.defaults import EMBEDDED_DEFAULT_CONFIG, EMBEDDED_DEFAULT_SOURCE
from fence_virt.daemon.dispatch import DEFAULT_DEADLINE
from fence_virt.errors import UserError

__all__ = ["DaemonSettings", "daemon_settings", "load_daemon_config"]


@dataclass(frozen=True)
class DaemonSettings:
    """The ``fence_virtd { ... }`` block (c-suite-spec §5.4)."""

    #: listener instances to run, in file order (C reads one; several are ours, see
    #: docs/architecture.md); empty: pick one listener automatically
    listener: tuple[str, ...] = ()
    backend: str | None = None
    foreground: bool = False
    debug: int = 0
    wait_for_init: bool = field(default=False, metadata={"aliases": ("wait_for_backend",)})
    #: C's plugin directory; accepted so C configs load, unused (plugins are entry points)
    module_path: str | None = None
    #: legacy location of the cpg backend's name_mode; read by that backend
    name_mode: str | None = None
    #: seconds a request has from reaching core until its answer is due (ours, not C's; see
    #: fence_virt.daemon.dispatch): what has not started by then never starts
    deadline: Annotated[float, POSITIVE] = DEFAULT_DEADLINE


def daemon_settings(config: ConfigTree) -> DaemonSettings:
    """The ``fence_virtd`` block of ``config``; :class:`ConfigError` (file:line) if it is wrong."""
    return load_section(
        config.child("fence_virtd"), DaemonSettings, where="fence_virtd", source=config.source
    )


def load_daemon_config(
    path: str | None, *, explicit: bool, source: ConfigSource | None = None
) -> ConfigTree:
    """Read the configuration at ``path`` through ``source``; without a path, or when
    nothing is there, the embedded default.

    :param path: the config location (``-f``), ``None`` for the embedded default.
    :param explicit: the operator named the location (``-f``): nothing there is then an error.
    :param source: the configuration source (``--config-source``); default: one
        ``fence_virt.conf`` file (:class:`fence_virt.config.sources.FileSource`).
    :raises fence_virt.errors.UserError: the named location does not exist, or the file is
        not a regular file (a FIFO, a device, a directory).
    :raises fence_virt.errors.ConfigError: the configuration does not parse (file:line).
    """
    if path is None:
        return parse_text(EMBEDDED_DEFAULT_CONFIG, source=EMBEDDED_DEFAULT_SOURCE)
    reader = FileSource() if source is None else source
    if not reader.exists(path):
        if explicit:
            raise UserError(f"config file {path} does not exist")
        return parse_text(EMBEDDED_DEFAULT_CONFIG, source=EMBEDDED_DEFAULT_SOURCE)
    return reader.load(path)
