"""``fence_virtd``: the command line (C flags -F -d -f -w -p, plus --list-plugins)."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from fence_virt.config import ConfigTree, load_file, load_section, parse_text
from fence_virt.daemon import listing
from fence_virt.daemon.background import StartupReport, detach
from fence_virt.daemon.defaults import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_PID_FILE,
    EMBEDDED_DEFAULT_CONFIG,
    EMBEDDED_DEFAULT_SOURCE,
)
from fence_virt.daemon.logs import configure_logging
from fence_virt.daemon.pidfile import PidFile
from fence_virt.daemon.runtime import DaemonRun, run_daemon
from fence_virt.daemon.selection import plugin_section, select_plugin
from fence_virt.daemon.static_map import StaticMap
from fence_virt.errors import UserError
from fence_virt.files import tighten_permissions
from fence_virt.plugins import PluginHooks, PluginKind, build_plugin_manager

__all__ = ["main"]

log = logging.getLogger("fence_virt.daemon")

#: like C, debug levels above 3 dump the parsed configuration (main.c)
DUMP_CONFIG_DEBUG = 3


@dataclass(frozen=True)
class DaemonSettings:
    """The ``fence_virtd { ... }`` block (c-suite-spec §5.4)."""

    listener: str | None = None
    backend: str | None = None
    foreground: bool = False
    debug: int = 0
    wait_for_init: bool = field(default=False, metadata={"aliases": ("wait_for_backend",)})
    #: C's plugin directory; accepted so C configs load, unused (plugins are entry points)
    module_path: str | None = None
    #: legacy location of the cpg backend's name_mode; read by that backend
    name_mode: str | None = None


def load_daemon_config(path: str | None, *, explicit: bool) -> ConfigTree:
    """Parse ``path``; without it, use the embedded default unless -f named it."""
    if path is None:
        return parse_text(EMBEDDED_DEFAULT_CONFIG, source=EMBEDDED_DEFAULT_SOURCE)
    file = Path(path)
    if not file.exists():
        if explicit:
            raise UserError(f"config file {path} does not exist")
        return parse_text(EMBEDDED_DEFAULT_CONFIG, source=EMBEDDED_DEFAULT_SOURCE)
    return load_file(file)


def _prepare(config: ConfigTree, settings: DaemonSettings, wait: bool) -> DaemonRun:
    chosen = {kind: select_plugin(kind, config) for kind in PluginKind}
    for kind, selection in chosen.items():
        entry = selection.entry
        log.info(
            "%s: %s from %s %s (%s)",
            kind,
            entry.name,
            entry.distribution,
            entry.version,
            selection.why,
        )
    listener, backend = chosen[PluginKind.LISTENER].entry, chosen[PluginKind.BACKEND].entry
    hooks = PluginHooks(build_plugin_manager(listener, backend), listener=listener, backend=backend)
    listener_obj = hooks.listener_create(
        plugin_section(config, PluginKind.LISTENER, listener.name), config
    )
    return DaemonRun(
        hooks=hooks,
        listener=listener_obj,
        listener_name=listener.name,
        backend_name=backend.name,
        backend_section=plugin_section(config, PluginKind.BACKEND, backend.name),
        config=config,
        static_map=StaticMap.from_config(config),
        wait_for_backend=wait or settings.wait_for_init,
    )


def _serve(run: DaemonRun, pid_file: PidFile, report: StartupReport) -> None:
    pid_file.acquire()
    try:
        asyncio.run(run_daemon(run, ready=report.ready))
    finally:
        pid_file.release()


def _run(
    config_file: str | None,
    explicit: bool,
    foreground: bool,
    debug: int | None,
    wait: bool,
    pid: str,
) -> None:
    configure_logging(foreground=True, debug=debug or 0)
    config = load_daemon_config(config_file, explicit=explicit)
    settings = load_section(config.node("fence_virtd"), DaemonSettings, where="fence_virtd")
    debug = settings.debug if debug is None else debug
    foreground = foreground or settings.foreground
    configure_logging(foreground=True, debug=debug)
    if debug > DUMP_CONFIG_DEBUG:
        log.debug("configuration from %s:\n%s", config.source, config.dump())
    if config_file is None or config.source == EMBEDDED_DEFAULT_SOURCE:
        log.warning("no config file in use: running on the embedded default (libvirt test driver)")
    else:
        tighten_permissions(Path(config_file), what="config file")
    run = _prepare(config, settings, wait)
    report = StartupReport()
    if not foreground:
        report = detach()
        configure_logging(foreground=False, debug=debug)
    try:
        _serve(run, PidFile(pid), report)
    except UserError as exc:
        report.failed(str(exc))
        raise
    except BaseException as exc:
        report.failed(f"unexpected error: {type(exc).__name__}: {exc}")
        raise


def _list_plugins(config_file: str | None, explicit: bool, as_json: bool) -> int:
    config = load_daemon_config(config_file, explicit=explicit)
    rows = listing.collect_rows(config)
    click.echo(listing.render_json(rows) if as_json else listing.render_table(rows))
    return 0 if all(r.loads for r in rows) else 1


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-F", "foreground", is_flag=True, help="Stay in the foreground; log to stderr.")
@click.option(
    "-d", "debug", type=click.IntRange(min=0), default=None, metavar="N", help="Debug level."
)
@click.option(
    "-f",
    "config_file",
    default=None,
    metavar="FILE",
    help=f"Config file (default {DEFAULT_CONFIG_FILE}).",
)
@click.option(
    "-w", "wait", is_flag=True, help="Wait for the backend to become ready (retry every 5 s)."
)
@click.option(
    "-p", "pid_file", default=DEFAULT_PID_FILE, show_default=True, metavar="FILE", help="Pid file."
)
@click.option(
    "--default-config",
    is_flag=True,
    help="Run on the embedded default (libvirt test driver), ignoring config files.",
)
@click.option("--list-plugins", is_flag=True, help="List installed plugins and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --list-plugins: print JSON.")
def main(
    foreground: bool,
    debug: int | None,
    config_file: str | None,
    wait: bool,
    pid_file: str,
    default_config: bool,
    list_plugins: bool,
    as_json: bool,
) -> None:
    """fence_virtd: fence virtual machines on behalf of guest clusters."""
    if default_config and config_file is not None:
        raise click.UsageError("-f and --default-config exclude each other")
    explicit = config_file is not None
    path = None if default_config else config_file or DEFAULT_CONFIG_FILE
    try:
        if list_plugins:
            sys.exit(_list_plugins(path, explicit, as_json))
        _run(path, explicit, foreground, debug, wait, pid_file)
    except UserError as exc:
        click.echo(f"fence_virtd: {exc}", err=True)
        sys.exit(exc.exit_code)
