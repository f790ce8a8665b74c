"""``fence_virtd --check``: tell the administrator, one line each, why fencing would fail.

What is checked, in order (each step that fails is one ``PROBLEM`` line with what to do,
and the check goes on with whatever can still be checked):

1. the configuration parses and names plugins that are installed and load;
2. each extension reads its block, and adds its own checks if its configure hook returned
   an object with them (:class:`fence_virt.Diagnosable`: can its port be bound);
3. each listener instance is built (its settings and key file are read, as at start-up),
   then asked for its own checks (:class:`fence_virt.Diagnosable`: can its socket be bound,
   does multicast have a route, does its key match the guest's);
4. the backend is built and started, asked for its own checks, and asked for the VMs it
   sees: none at all is a problem (a wrong hypervisor URI, the most common report);
5. every VM a static map names is one the backend sees (a misspelt name is a guest that
   can never be fenced).

Warnings plugins log meanwhile (a key file's mode tightened to 0600, ``hash = none``) are
shown as ``warning`` lines. Nothing is changed but what ``fence_virtd`` itself would change
when starting (the mode of a key file, as C does); the backend is connected and released.
A daemon already running on this configuration holds its ports, so the bind checks then
report them in use.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fence_virt.config import ConfigSection, ConfigTree
from fence_virt.config.sources import ConfigSource
from fence_virt.daemon.dispatch import BackendRunner
from fence_virt.daemon.selection import DaemonPlan, ListenerPlan, plan_daemon
from fence_virt.daemon.settings import load_daemon_config
from fence_virt.errors import BackendError, ConfigError, FenceVirtError, PluginError, UserError
from fence_virt.listening import key_problem
from fence_virt.plugins import PluginEntry, PluginHooks, build_plugin_manager
from fence_virt.protocol import HostState
from fence_virt.types import Backend, CheckContext, Diagnosable, Finding

__all__ = ["CHECK_REQUESTER", "Report", "ReportLine", "run_check"]

#: the requester the backend's host list is asked for
CHECK_REQUESTER = "fence_virtd --check"
#: VM names printed on the backend's line; the rest are counted
_SHOWN_VMS = 10


@dataclass(frozen=True)
class ReportLine:
    """One printed line: which part of the configuration, and the finding."""

    #: e.g. ``config``, ``listener multicast``, ``backend libvirt``, ``groups/cluster1``
    subject: str
    finding: Finding

    def render(self) -> str:
        """``PROBLEM  listener multicast: <what> -> <what to do>``."""
        text = f"{self.finding.severity.value:<8} {self.subject}: {self.finding.text}"
        return f"{text} -> {self.finding.fix}" if self.finding.fix else text


@dataclass
class Report:
    """Every line of one check, in order."""

    lines: list[ReportLine] = field(default_factory=list)
    #: the part being checked: where warnings logged meanwhile belong
    subject: str = "config"

    def add(self, finding: Finding, subject: str | None = None) -> None:
        self.lines.append(ReportLine(subject or self.subject, finding))

    @property
    def problems(self) -> int:
        return sum(line.finding.is_problem for line in self.lines)

    def render(self) -> str:
        """All lines and a summary line."""
        rows = [line.render() for line in self.lines]
        if self.problems:
            rows.append(f"{self.problems} problem(s) found")
        else:
            rows.append("no problems found")
        return "\n".join(rows)

    @contextmanager
    def capturing_warnings(self) -> Iterator[None]:
        """Turn records of WARNING and above logged meanwhile into ``warning`` lines."""
        handler = _WarningLines(self)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)


class _WarningLines(logging.Handler):
    def __init__(self, report: Report) -> None:
        super().__init__(logging.WARNING)
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        self._report.add(Finding.warning(record.getMessage()))


def _fix_for(exc: UserError) -> str:
    """What to do about an error raised while building the daemon."""
    if isinstance(exc, ConfigError):
        return "correct the configuration where the message says"
    if isinstance(exc, PluginError):
        return "install or repair the plugin's distribution (fence_virtd --list-plugins)"
    return "correct what the message names"


def _check_written_key(section: ConfigSection, reported: str, report: Report) -> None:
    """A problem for the ``key_file`` a block names, if that file cannot be used and the
    problem ``reported`` already (the listener could not be built) is not about it."""
    if section.node is None:
        return
    written = [value.value for value in section.node.values if value.key == "key_file"]
    if not written:
        return
    problem = key_problem(Path(written[-1]))
    if problem is not None and written[-1] not in reported:
        report.add(Finding.problem(problem, "create the key file or correct key_file"))


def run_check(
    config_file: str | None,
    *,
    explicit: bool,
    context: CheckContext | None = None,
    source: ConfigSource | None = None,
) -> Report:
    """Check the configuration ``config_file`` names (``None``: the embedded default).

    :param explicit: the file was named with ``-f`` (a missing file is a problem).
    :param context: what the administrator gave besides the file (a guest's key).
    :param source: the configuration source (``--config-source``); default: one file.
    :returns: the report; never raises for anything the configuration or a plugin does.
    """
    report = Report()
    with report.capturing_warnings():
        try:
            config = load_daemon_config(config_file, explicit=explicit, source=source)
            plan = plan_daemon(config)
        except UserError as exc:
            report.add(Finding.problem(str(exc), _fix_for(exc)))
            return report
        instances = ", ".join(chosen.name for chosen in plan.listeners)
        report.add(
            Finding.ok(f"{config.source} parses: listener {instances}, backend {plan.backend.name}")
        )
        asyncio.run(_check_plan(config, plan, context or CheckContext(), report))
    return report


async def _check_plan(
    config: ConfigTree, plan: DaemonPlan, context: CheckContext, report: Report
) -> None:
    hooks = PluginHooks(build_plugin_manager(plan.entries), plan.entries)
    for extension in plan.extensions:
        report.subject = f"extension {extension.entry.name}"
        try:
            configured = hooks.extension_configure(extension.entry, extension.section, config)
        except UserError as exc:
            report.add(Finding.problem(str(exc), _fix_for(exc)))
            continue
        report.add(Finding.ok(f"configured ({_origin(extension.entry)})"))
        for finding in await _diagnose(configured, extension.entry, context):
            report.add(finding)
    for chosen in plan.listeners:
        report.subject = f"listener {chosen.name}"
        try:
            listener = hooks.listener_create(chosen.entry, chosen.section, config)
        except UserError as exc:
            report.add(Finding.problem(str(exc), _fix_for(exc)))
            # one problem must not hide the next: the key file is checked all the same
            _check_written_key(chosen.section, str(exc), report)
            continue
        report.add(Finding.ok(f"{listener.describe()} ({_origin(chosen.entry)})"))
        for finding in await _diagnose(listener, chosen.entry, context):
            report.add(finding)
    report.subject = f"backend {plan.backend.name}"
    try:
        backend = hooks.backend_create(plan.backend, plan.backend_section, config)
    except UserError as exc:
        report.add(Finding.problem(str(exc), _fix_for(exc)))
        return
    report.add(Finding.ok(f"{backend.describe()} ({_origin(plan.backend)})"))
    await _check_backend(backend, plan, context, report)


def _origin(entry: PluginEntry) -> str:
    return f"{entry.distribution} {entry.version}"


async def _diagnose(thing: object, entry: PluginEntry, context: CheckContext) -> list[Finding]:
    """The object's own findings (:class:`Diagnosable`), or none if it has no checks."""
    if not isinstance(thing, Diagnosable):
        return []
    try:
        if inspect.iscoroutinefunction(thing.diagnose):
            value: object = await thing.diagnose(context)
        else:
            value = await asyncio.to_thread(thing.diagnose, context)
    except Exception as exc:  # noqa: BLE001 -- a broken check is one problem line, not the end
        return [
            Finding.problem(
                f"the checks of {entry.label} failed: {type(exc).__name__}: {exc}",
                f"report this to the authors of {entry.distribution}",
            )
        ]
    if not isinstance(value, Sequence) or not all(isinstance(f, Finding) for f in value):
        return [
            Finding.problem(
                f"diagnose() of {entry.label} returned {value!r}, not a sequence of Finding",
                f"report this to the authors of {entry.distribution}",
            )
        ]
    return list(value)


async def _check_backend(
    backend: Backend, plan: DaemonPlan, context: CheckContext, report: Report
) -> None:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="check") as executor:
        runner = BackendRunner(backend, plan.backend, executor)
        try:
            await runner.start()
        except (BackendError, UserError) as exc:
            report.add(
                Finding.problem(
                    f"does not start: {exc}",
                    f"check {plan.backend_section.path} (is the hypervisor or manager up?)",
                )
            )
            return
        try:
            findings = await _diagnose(backend, plan.backend, context)
            for finding in findings:
                report.add(finding)
            states = await _vms(runner, report, findings)
        finally:
            await runner.stop()
    if states is not None:
        _check_static_maps(plan.listeners, states, plan.backend.name, report)


async def _vms(
    runner: BackendRunner, report: Report, findings: Sequence[Finding]
) -> list[HostState] | None:
    """The VMs the backend lists, with one line saying which; ``None`` if it cannot list."""
    try:
        states = list(await runner.hostlist(CHECK_REQUESTER))
    except FenceVirtError as exc:
        report.add(Finding.problem(f"cannot list VMs: {exc}", "see the backend's log lines"))
        return None
    if states:
        names = ", ".join(state.domain for state in states[:_SHOWN_VMS])
        more = f" and {len(states) - _SHOWN_VMS} more" if len(states) > _SHOWN_VMS else ""
        report.add(Finding.ok(f"sees {len(states)} VM(s): {names}{more}"))
    elif not any(finding.is_problem for finding in findings):
        # the backend's own checks may already have said why (a URI with no VMs)
        report.add(
            Finding.problem(
                "sees no VMs: every fencing request would fail",
                "check that the backend's block names the hypervisor the guests run on",
            )
        )
    return states


def _check_static_maps(
    listeners: Sequence[ListenerPlan], states: Sequence[HostState], backend: str, report: Report
) -> None:
    """One problem per static-map entry naming a VM the backend does not list."""
    known = {state.domain.casefold() for state in states}
    known.update(state.uuid.casefold() for state in states)
    reported: set[tuple[str, str]] = set()
    for chosen in listeners:
        for group in chosen.static_map.groups:
            for vm in sorted(group.uuids - known):
                if (group.name, vm) in reported:
                    continue  # the top-level map is shared by every instance without its own
                reported.add((group.name, vm))
                report.add(
                    Finding.problem(
                        f"group {group.name} names VM {vm!r}, which backend {backend} does "
                        "not see: its guests can never fence it",
                        "correct the uuid entry (a VM name or UUID the backend lists)",
                    ),
                    subject=f"listener {chosen.name}",
                )
