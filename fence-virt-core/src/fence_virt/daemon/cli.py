"""``fence_virtd``: the command line (C flags -F -d -f -w -p -c, plus --answer,
--list-plugins, --check, --upgrade-from with --xvmd-args and --new-plugin).

This module parses options, runs the process around a :class:`~fence_virt.daemon.app.Daemon`
(logging, detaching, the pid file), wires SIGTERM/SIGINT to its stop, and turns every
:class:`~fence_virt.errors.UserError` into one line on stderr and an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from fence_virt.config.sources import CONFIG_SOURCE_GROUP, DEFAULT_CONFIG_SOURCE
from fence_virt.daemon import doctor, listing, scaffold
from fence_virt.daemon.app import Daemon
from fence_virt.daemon.background import StartupReport, detach
from fence_virt.daemon.config_sources import find_config_source
from fence_virt.daemon.defaults import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_PID_FILE,
    EMBEDDED_DEFAULT_SOURCE,
)
from fence_virt.daemon.logs import install_logging
from fence_virt.daemon.pidfile import PidFile
from fence_virt.daemon.scaffold import KINDS
from fence_virt.daemon.settings import daemon_settings, load_daemon_config
from fence_virt.daemon.systemd import Notifier, default_executable, render_unit, unit_problem
from fence_virt.daemon.upgrade import convert
from fence_virt.daemon.wizard import run_wizard
from fence_virt.daemon.wizard_answers import parse_answers
from fence_virt.errors import UserError
from fence_virt.files import tighten_permissions
from fence_virt.protocol import MAX_KEY_LEN
from fence_virt.types import CheckContext

__all__ = ["main"]

log = logging.getLogger("fence_virt.daemon")

#: like C, debug levels above 3 dump the parsed configuration (main.c)
DUMP_CONFIG_DEBUG = 3
#: signals that stop the daemon cleanly
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: signals whose default action would end the daemon without a word: logged and ignored, as
#: C blocks them. There is no reload: a changed configuration needs a restart, and an
#: administrator's habitual ``kill -HUP`` must not stop all fencing.
IGNORED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)


def _ignored(sig: signal.Signals) -> None:
    log.warning(
        "received %s: ignored (fence_virtd has no reload; restart it to read its configuration)",
        sig.name,
    )


@dataclass(frozen=True)
class Options:
    """The command line, as parsed."""

    #: the config file; ``None`` for the embedded default
    config_file: str | None
    #: ``-f`` named the file (a missing file is then an error)
    explicit: bool
    foreground: bool
    #: ``-d``; ``None`` when not given (the config's ``debug`` applies)
    debug: int | None
    wait: bool
    pid_file: str
    #: ``--config-source``: the entry point of the configuration source
    config_source: str = DEFAULT_CONFIG_SOURCE


async def _serve(daemon: Daemon, report: StartupReport, notifier: Notifier | None) -> None:
    """Run ``daemon`` until SIGTERM or SIGINT, telling systemd when it is ready and stopping
    (``notifier``, from ``$NOTIFY_SOCKET``) and pinging its watchdog meanwhile."""
    loop = asyncio.get_running_loop()

    def ready() -> None:
        report.ready()
        if notifier is not None:
            notifier.ready(
                f"serving {len(daemon.listeners)} listener(s), backend {daemon.backend_entry.name}"
            )

    def stop() -> None:
        if notifier is not None:
            notifier.stopping()
        daemon.request_stop()

    if notifier is not None:
        # each retry asks for the retry interval and a start-up's worth more (30 s: a
        # backend attempt's own time), so systemd's start timeout never ends a -w wait
        daemon.on_backend_wait = lambda why, seconds: notifier.waiting(why, seconds + 30)
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)
    for sig in IGNORED_SIGNALS:
        loop.add_signal_handler(sig, _ignored, sig)
    try:
        async with notifier.watching() if notifier else contextlib.nullcontext():
            await daemon.run(ready=ready)
    finally:
        for sig in (*STOP_SIGNALS, *IGNORED_SIGNALS):
            loop.remove_signal_handler(sig)


def _exit_without_abandoned_threads(daemon: Daemon, pid_file: PidFile) -> None:
    """Leave now if the daemon left backend calls running (a hung hypervisor call).

    The interpreter would join their worker threads at exit and hang on a daemon that was
    told to stop; so, with the pid file gone and the logs flushed, the process ends here.
    """
    if not daemon.abandoned_calls:
        return
    pid_file.release()
    log.warning("fence_virtd exits with %d backend call(s) still running", daemon.abandoned_calls)
    logging.shutdown()
    os._exit(0)


def _run(options: Options) -> None:
    for sig in IGNORED_SIGNALS:  # until the event loop logs them
        signal.signal(sig, signal.SIG_IGN)
    logs = install_logging(debug=options.debug or 0)
    config = load_daemon_config(
        options.config_file,
        explicit=options.explicit,
        source=find_config_source(options.config_source),
    )
    settings = daemon_settings(config)
    debug = settings.debug if options.debug is None else options.debug
    logs.set_debug(debug)
    if debug > DUMP_CONFIG_DEBUG:
        log.debug("configuration from %s:\n%s", config.source, config.dump())
    if options.config_file is None or config.source == EMBEDDED_DEFAULT_SOURCE:
        log.warning("no config file in use: running on the embedded default (libvirt test driver)")
    elif Path(options.config_file).exists():  # a source may read more than this one file
        tighten_permissions(Path(options.config_file), what="config file")
    daemon = Daemon.from_config(config, wait_for_backend=options.wait or settings.wait_for_init)
    report = StartupReport()
    if not (options.foreground or settings.foreground):
        report = detach()
        logs.detach()
    pid_file = PidFile(options.pid_file)
    try:
        pid_file.acquire()
        try:
            asyncio.run(_serve(daemon, report, Notifier.from_environment()))
            _exit_without_abandoned_threads(daemon, pid_file)
        finally:
            pid_file.release()
    except UserError as exc:
        report.failed(str(exc))
        raise
    except BaseException as exc:
        report.failed(f"unexpected error: {type(exc).__name__}: {exc}")
        raise


def _list_plugins(config_file: str | None, explicit: bool, as_json: bool, source: str) -> int:
    config = load_daemon_config(config_file, explicit=explicit, source=find_config_source(source))
    rows = listing.collect_rows(config)
    click.echo(listing.render_json(rows) if as_json else listing.render_table(rows))
    return 0 if all(r.loads for r in rows) else 1


def _check(config_file: str | None, explicit: bool, guest_key_file: str | None, source: str) -> int:
    """``--check``: print the doctor's report; 1 if it found a problem."""
    context = CheckContext()
    if guest_key_file is not None:
        try:
            with open(guest_key_file, "rb") as file:  # a copy: its mode is not ours to change
                context = CheckContext(file.read(MAX_KEY_LEN), guest_key_file)
        except OSError as exc:
            raise UserError(f"guest key file {guest_key_file}: {exc.strerror}") from exc
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("stevedore").setLevel(logging.CRITICAL)
    report = doctor.run_check(
        config_file, explicit=explicit, context=context, source=find_config_source(source)
    )
    click.echo(report.render())
    return 1 if report.problems else 0


def _upgrade(cluster_conf: str | None, xvmd_args: str | None) -> int:
    """Print the converted configuration, or -- if anything was refused -- nothing on
    standard output and each refused item on standard error: a partial conversion must not
    end up as someone's fence_virt.conf (a wrong group, port or key silently stops fencing).
    :returns: the exit status (1 if anything was refused)."""
    conversion = convert(cluster_conf, xvmd_args)
    if not conversion.refused:
        click.echo(conversion.render(), nl=False)
        return 0
    for line in conversion.one_line(conversion.refused):
        click.echo(f"fence_virtd: not converted: {line}", err=True)
    click.echo(
        "fence_virtd: no configuration printed: fix or remove what is named above, then "
        "convert again",
        err=True,
    )
    return 1


def _debug_level(_context: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise click.BadParameter(f"{value} is not a debug level (0 or more)")
    return value


#: options that each select what the command does; at most one is given
_MODES = (
    ("configure", "-c"),
    ("check", "--check"),
    ("list_plugins", "--list-plugins"),
    ("new_plugin", "--new-plugin"),
    ("systemd_unit", "--systemd-unit"),
    ("upgrade_from", "--upgrade-from"),
    ("xvmd_args", "--xvmd-args"),
)
#: modes that may be given together: one conversion from a file and a command line
_TOGETHER = frozenset({"--upgrade-from", "--xvmd-args"})
#: options that only mean something beside another: (option, its parameter, the one it needs)
_NEEDS = (
    ("--answer", "answers", "configure"),
    ("--add-listeners", "more_listeners", "configure"),
    ("--json", "as_json", "list_plugins"),
    ("--into", "into", "new_plugin"),
    ("--key-of-guest", "guest_key_file", "check"),
)


def _check_combinations(params: dict[str, object]) -> None:
    """Refuse two modes at once, and an option without the mode it belongs to: ignored, it
    would start the daemon instead of doing what the administrator asked.

    :raises click.UsageError: one line naming the options.
    """
    given = [flag for name, flag in _MODES if params[name] not in (None, False)]
    if len(given) > 1 and not set(given) <= _TOGETHER:
        raise click.UsageError(f"{' and '.join(given)} exclude each other: give one")
    names = dict(_MODES)
    for option, name, needed in _NEEDS:
        if params[name] and not params[needed]:
            raise click.UsageError(f"{option} needs {names[needed]}")


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Start with --check after any change: it says, one line per problem, why fencing "
    "would fail. See fence_virtd(8) and fence_virt.conf(5).",
)
@click.option(
    "-F", "foreground", is_flag=True, help="Stay in the foreground and log to standard error."
)
@click.option(
    "-d",
    "debug",
    type=int,
    default=None,
    metavar="N",
    callback=_debug_level,
    help="Debug level: 0 logs requests and problems; 1 and up add debug messages; above 3 "
    "the parsed configuration too (default: the file's debug key, else 0).",
)
@click.option(
    "-f",
    "config_file",
    default=None,
    metavar="FILE",
    help=f"Configuration file (default {DEFAULT_CONFIG_FILE}; if that does not exist, a "
    "demonstration default that fences only libvirt's test driver is used, with a warning).",
)
@click.option(
    "-w",
    "wait",
    is_flag=True,
    help="If the backend is not ready (hypervisor down), retry every 5 s instead of exiting.",
)
@click.option(
    "-p", "pid_file", default=DEFAULT_PID_FILE, show_default=True, metavar="FILE", help="Pid file."
)
@click.option(
    "-c",
    "configure",
    is_flag=True,
    help="Configuration wizard: ask for the listener and backend settings (the file's values "
    "as defaults), show the result and write it to the -f file once confirmed.",
)
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="KEY=VALUE",
    help="With -c: answer the wizard's question about KEY (its path in the file, e.g. "
    "listeners/multicast/port=1230; repeat the option) instead of asking; unanswered "
    "questions keep their defaults, the file is written without confirmation.",
)
@click.option(
    "--add-listeners",
    "more_listeners",
    is_flag=True,
    help="With -c: after the first listener, offer to add further listener instances "
    "(fence-virt only: the C daemon serves one).",
)
@click.option(
    "--default-config",
    is_flag=True,
    help="Ignore configuration files: run on the demonstration default (libvirt's test "
    "driver only, never a real VM).",
)
@click.option(
    "--config-source",
    default=DEFAULT_CONFIG_SOURCE,
    show_default=True,
    metavar="NAME",
    help="Read the configuration through this source plugin (entry point in "
    f"{CONFIG_SOURCE_GROUP}; dropin also reads the .conf files in FILE.d); -f names its location.",
)
@click.option(
    "--list-plugins",
    is_flag=True,
    help="List the installed plugins, whether each can run here with the -f file's settings "
    "and why not, and exit.",
)
@click.option("--json", "as_json", is_flag=True, help="With --list-plugins: print JSON.")
@click.option(
    "--new-plugin",
    type=(click.Choice(sorted(KINDS)), str),
    default=None,
    metavar="KIND NAME",
    help="Write the skeleton of a new backend or listener plugin distribution and exit.",
)
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="With --new-plugin: the folder to create it in (default: the current one).",
)
@click.option(
    "--systemd-unit",
    is_flag=True,
    help="Print the systemd unit file for this fence_virtd (Type=notify) and exit.",
)
@click.option(
    "--upgrade-from",
    "upgrade_from",
    default=None,
    metavar="CLUSTER_CONF",
    help="Print the fence_virt.conf equivalent to a fence_xvm-era cluster.conf (its "
    "<fence_xvmd .../> element and fence_xvm devices) and exit. Exit 1, printing no "
    "configuration and one line per item on standard error, when something that decides "
    "where fencing goes could not be converted; harmless leftovers are '# not converted' "
    "comments only.",
)
@click.option(
    "--xvmd-args",
    "xvmd_args",
    default=None,
    metavar="'OPTIONS'",
    help="The options fence_xvmd ran with (FENCE_XVMD_OPTS in /etc/sysconfig/cman), quoted "
    "as one argument: a single string keeps fence_xvmd's -d, -f, -p and -c apart from "
    "fence_virtd's own, which mean other things. Converted with --upgrade-from (as in "
    "fence_xvmd, <fence_xvmd> attributes override them unless -X or -L is given) or alone "
    "for a host that ran fence_xvmd without cluster.conf.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Check the configuration, plugins, keys, sockets and backend (the VMs it sees), "
    "print one line per finding with what to do, and exit (1 if fencing would fail).",
)
@click.option(
    "--key-of-guest",
    "guest_key_file",
    default=None,
    metavar="FILE",
    help="With --check: a copy of the key file a guest uses, compared with each listener's.",
)
def main(
    foreground: bool,
    debug: int | None,
    config_file: str | None,
    wait: bool,
    pid_file: str,
    configure: bool,
    answers: tuple[str, ...],
    more_listeners: bool,
    default_config: bool,
    config_source: str,
    list_plugins: bool,
    as_json: bool,
    new_plugin: tuple[str, str] | None,
    into: Path | None,
    systemd_unit: bool,
    upgrade_from: str | None,
    xvmd_args: str | None,
    check: bool,
    guest_key_file: str | None,
) -> None:
    """fence_virtd: fence virtual machines on behalf of guest clusters.

    Without a mode option it runs the daemon (in the background unless -F): its listeners
    take requests from the guests' fence_xvm / fence_virt agents, its backend carries them
    out. The modes -c, --check, --list-plugins, --upgrade-from (with or without
    --xvmd-args), --systemd-unit and --new-plugin do one thing and exit.
    """
    if default_config and config_file is not None:
        raise click.UsageError("-f and --default-config exclude each other")
    _check_combinations(click.get_current_context().params)
    explicit = config_file is not None
    path = None if default_config else config_file or DEFAULT_CONFIG_FILE
    if systemd_unit:
        executable = default_executable()
        click.echo(render_unit(executable), nl=False)
        problem = unit_problem(executable)
        if problem is not None:
            click.echo(f"fence_virtd: warning: {problem}", err=True)
        return
    try:
        if configure:
            given = parse_answers(answers) if answers else None
            file = config_file or DEFAULT_CONFIG_FILE
            sys.exit(run_wizard(file, sys.stdin, sys.stdout, given, more_listeners=more_listeners))
        if new_plugin is not None:
            created = scaffold.new_plugin(*new_plugin, into or Path())
            click.echo(f"wrote {created}: pip install it beside fence-virt-core, then pytest")
            return
        if list_plugins:
            sys.exit(_list_plugins(path, explicit, as_json, config_source))
        if upgrade_from is not None or xvmd_args is not None:
            sys.exit(_upgrade(upgrade_from, xvmd_args))
        if check:
            sys.exit(_check(path, explicit, guest_key_file, config_source))
        _run(Options(path, explicit, foreground, debug, wait, pid_file, config_source))
    except UserError as exc:
        click.echo(f"fence_virtd: {exc}", err=True)
        sys.exit(exc.exit_code)
