"""Mutation testing of the modules that decide whether a fencing request succeeded.

    scripts/mutation [TARGET ...] [--list] [--resume] [--survivors]

Each TARGET (default: all, one after another; ``--list`` names them) is one module and the
fast tests that guard it. For each, cosmic-ray (docs/mutation.md says why that tool) makes
every mutant of the module -- a comparison flipped, a ``not`` added or dropped, a number or
a boolean changed, a loop that never runs, an ``except`` that no longer catches, an
arithmetic operator swapped -- applies it to the file on disk, runs the tests, and restores
the file. A mutant the tests do not notice *survived*: it is a missing test, or an
equivalent mutant whose reason docs/mutation.md records.

Not part of scripts/test: it takes minutes per module (a run of the tests per mutant).
Run it before calling a change to one of these modules done, and record new survivors.

Sessions and reports go to ``.mutation/`` (ignored by git): ``TARGET.sqlite`` (cosmic-ray's
session; ``--resume`` carries on an interrupted one, ``--survivors`` runs only its
survivors again), ``TARGET.txt`` (the survivors with their diffs). The exit status is 1
if any target has a survivor or could not run.

Mutants that cannot change behaviour are skipped before the run, never counted:
those inside type annotations (strings at run time under ``from __future__ import
annotations``) and the binary-operator swaps listed in :data:`EXCLUDED_OPERATORS`; a target
with a ``scope`` mutates only the functions it names.
A module with uncommitted changes is refused: cosmic-ray edits the file in place, and the
script restores it from git if a run is interrupted.
"""

from __future__ import annotations

import argparse
import ast
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db  # type: ignore[import-untyped]
from cosmic_ray.work_item import (  # type: ignore[import-untyped]
    MutationSpec,
    TestOutcome,
    WorkerOutcome,
    WorkResult,
)

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".mutation"
VENV_BIN = ROOT / ".venv" / "bin"
#: seconds one mutant's test run may take (a mutant that hangs a wait is killed by timeout)
MUTANT_TIMEOUT = 120.0
#: seconds one test may take inside that run (pytest-timeout): a hang is a failure
TEST_TIMEOUT = 30

#: binary-operator swaps not run: only the swap to the operator's nearest sibling (+/-,
#: *//, //%) is kept; the exotic ones (<<, **, ^, ...) are killed whenever the near one is
#: and would multiply the run time by eleven. Every BitOr swap in these modules is in a
#: type annotation or a flag set, never in a decision.
EXCLUDED_OPERATORS = (
    r"core/ReplaceBinaryOperator_(?!Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Mul|Mod_FloorDiv)",
)

LIBVIRT_TESTS = tuple(
    f"fence-virt-libvirt/tests/test_libvirt_{name}.py"
    for name in (
        "readback",
        "multi_uri",
        "default",
        "states",
        "concurrency",
        "reconnect",
        "xml",
    )
)
DISPATCH_TESTS = tuple(
    f"fence-virt-core/tests/daemon/test_{name}.py"
    for name in ("dispatch", "dispatch_deadline", "dispatch_failures", "static_map")
)
LISTENING_TESTS = tuple(
    f"fence-virt-core/tests/listening/test_listening_{name}.py"
    for name in ("replay", "history", "release", "stream_server", "session")
)


#: (start, end) positions in a source file: (line from 1, column from 0)
Span = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Target:
    """One module under mutation and the tests that must notice every change to it."""

    module: str
    tests: tuple[str, ...]
    why: str
    #: mutate only these top-level functions (and methods of these classes); all if empty
    scope: tuple[str, ...] = ()


TARGETS = {
    "libvirt-operations": Target(
        "fence-virt-libvirt/src/fence_virt_libvirt/operations.py",
        LIBVIRT_TESTS,
        "off/on/reboot/status over every copy of a VM, deadlines, per-UUID locks",
    ),
    "libvirt-readback": Target(
        "fence-virt-libvirt/src/fence_virt_libvirt/domains.py",
        LIBVIRT_TESTS,
        "finding every copy of a VM and reading its state back before any success",
        (
            "_no_domain",
            "_probe",
            "Copies",
            "_probe_all",
            "locate",
            "running_copies",
            "state_on",
            "current_state",
            "wait_for_state",
        ),
    ),
    "dispatch": Target(
        "fence-virt-core/src/fence_virt/daemon/dispatch.py",
        DISPATCH_TESTS,
        "permissions, per-VM order, deadlines, never a false success from a plugin",
    ),
    "static-map": Target(
        "fence-virt-core/src/fence_virt/daemon/static_map.py",
        DISPATCH_TESTS,
        "which requester may fence which VM",
    ),
    "replay-guard": Target(
        "fence-virt-core/src/fence_virt/listening/replay.py",
        LISTENING_TESTS,
        "a captured signed request is not served twice",
    ),
    "request-history": Target(
        "fence-virt-core/src/fence_virt/listening/history.py",
        LISTENING_TESTS,
        "a retransmit is carried out once; a request not carried out may be sent again",
    ),
    "agent-results": Target(
        "fence-virt-core/src/fence_virt/agents/runner.py",
        ("fence-virt-core/tests/agents/test_agent_results.py",),
        "the agent's exit status and message for each answer",
        ("_fence", "report"),
    ),
    "multicast-release": Target(
        "fence-virt-listener-multicast/src/fence_virt_listener_multicast/listener.py",
        (
            "fence-virt-listener-multicast/tests/test_multicast_release.py",
            "fence-virt-listener-multicast/tests/test_multicast_runner.py",
        ),
        "a request is served once; one whose every connect-back failed may be sent again",
        ("MulticastListener.datagram_received", "MulticastListener._run"),
    ),
}


def config_text(target: Target) -> str:
    """cosmic-ray's session config for ``target`` (TOML)."""
    tests = " ".join(target.tests)
    command = f"{VENV_BIN / 'pytest'} -x -q -p no:cacheprovider --timeout {TEST_TIMEOUT} {tests}"
    excluded = ", ".join(f"'{pattern}'" for pattern in EXCLUDED_OPERATORS)
    return (
        "[cosmic-ray]\n"
        f'module-path = "{target.module}"\n'
        f"timeout = {MUTANT_TIMEOUT}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n\n'
        '[cosmic-ray.distributor]\nname = "local"\n\n'
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n"
    )


def annotation_spans(source: str) -> list[Span]:
    """(start, end) positions, (line from 1, column from 0), of every type annotation."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for expr in found:
            if expr is not None and expr.end_lineno is not None and expr.end_col_offset is not None:
                spans.append(
                    ((expr.lineno, expr.col_offset), (expr.end_lineno, expr.end_col_offset))
                )
    return spans


def _definitions(source: str) -> Iterator[tuple[str, ast.stmt]]:
    """(name, node) of every top-level function and class, and of every method as
    ``"Class.method"``."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in ast.parse(source).body:
        if isinstance(node, kinds):
            yield node.name, node
        if isinstance(node, ast.ClassDef):
            for inner in node.body:
                if isinstance(inner, kinds):
                    yield f"{node.name}.{inner.name}", inner


def scope_spans(source: str, names: tuple[str, ...]) -> list[Span]:
    """(start, end) positions of the definitions called ``names`` (see :func:`_definitions`)."""
    return [
        ((node.lineno, 0), (node.end_lineno or node.lineno, 10_000))
        for name, node in _definitions(source)
        if name in names
    ]


def _inside(mutation: MutationSpec, spans: list[Span]) -> bool:
    start = tuple(mutation.start_pos)
    return any(low <= start < high for low, high in spans)


def skip_unwanted(session: Path, module: Path, scope: tuple[str, ...]) -> int:
    """Mark every mutant inside a type annotation, or outside ``scope`` if one is given,
    skipped; how many were."""
    source = module.read_text()
    annotations = annotation_spans(source)
    wanted = scope_spans(source, scope) if scope else None
    skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            why = None
            if all(_inside(m, annotations) for m in item.mutations):
                why = "in a type annotation"
            elif wanted is not None and not any(_inside(m, wanted) for m in item.mutations):
                why = "outside the target's scope"
            if why is not None:
                db.set_result(
                    item.job_id, WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED)
                )
                skipped += 1
    return skipped


def forget_survivors(session: Path) -> int:
    """Make the survivors (and errors) of a finished session pending again; how many."""
    with sqlite3.connect(session) as db:
        cursor = db.execute(
            "DELETE FROM work_results WHERE worker_outcome != 'SKIPPED' "
            "AND (test_outcome IS NULL OR test_outcome != 'KILLED')"
        )
        return cursor.rowcount


def run(*argv: str | Path) -> None:
    subprocess.run([str(a) for a in argv], cwd=ROOT, check=True)


def clean(module: str) -> bool:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--", module],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout == ""


@dataclass
class Outcome:
    total: int = 0
    skipped: int = 0
    killed: int = 0
    survived: list[str] | None = None
    errors: int = 0


def summarize(session: Path, module: Path) -> Outcome:
    """Counts and the survivors (line, operator, source line, diff) of a finished session."""
    lines = module.read_text().splitlines()
    outcome = Outcome(survived=[])
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in sorted(
            db.completed_work_items, key=lambda pair: tuple(pair[0].mutations[0].start_pos)
        ):
            outcome.total += 1
            mutation = item.mutations[0]
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                outcome.skipped += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                line = mutation.start_pos[0]
                assert outcome.survived is not None
                outcome.survived.append(
                    f"{module.name}:{line} {mutation.operator_name} "
                    f"[{lines[line - 1].strip()}]\n{result.diff or ''}"
                )
            elif result.test_outcome == TestOutcome.KILLED:
                outcome.killed += 1
            else:
                outcome.errors += 1
        outcome.total += len(db.pending_work_items)
    return outcome


def mutate(name: str, target: Target, resume: bool, survivors: bool = False) -> Outcome:
    """Run (or resume) one target's session, or only its survivors again; the module is
    restored whatever happens."""
    module = ROOT / target.module
    STATE.mkdir(exist_ok=True)
    config = STATE / f"{name}.toml"
    session = STATE / f"{name}.sqlite"
    config.write_text(config_text(target))
    cosmic_ray = VENV_BIN / "cosmic-ray"
    try:
        if survivors and session.exists():
            print(f"{name}: {forget_survivors(session)} survivors run again")
        elif not (resume and session.exists()):
            session.unlink(missing_ok=True)
            run(cosmic_ray, "init", config, session)
            run(VENV_BIN / "cr-filter-operators", session, config)
            skipped = skip_unwanted(session, module, target.scope)
            print(f"{name}: {skipped} mutants in annotations or out of scope skipped")
            run(cosmic_ray, "baseline", config)
        run(cosmic_ray, "exec", config, session)
    finally:
        if not clean(target.module):
            print(f"{name}: restoring {target.module} from git", file=sys.stderr)
            run("git", "checkout", "--", target.module)
    return summarize(session, module)


def report(name: str, outcome: Outcome) -> str:
    survived = outcome.survived or []
    run_count = outcome.total - outcome.skipped
    head = (
        f"{name}: {outcome.total} mutants, {outcome.skipped} skipped, {run_count} run: "
        f"{outcome.killed} killed, {len(survived)} survived, {outcome.errors} errors"
    )
    return "\n".join([head, *survived])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--list", action="store_true", help="name every target and exit")
    parser.add_argument("--resume", action="store_true", help="carry on an interrupted run")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="run only the last run's survivors again (after adding tests)",
    )
    args = parser.parse_args()
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name:20} {target.module}\n{'':20} {target.why}")
        return 0
    unknown = [name for name in args.targets if name not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; --list names them")
    names = args.targets or list(TARGETS)
    dirty = [TARGETS[n].module for n in names if not clean(TARGETS[n].module)]
    if dirty:
        parser.error(f"commit or stash first (cosmic-ray edits in place): {', '.join(dirty)}")
    failed = False
    for name in names:
        outcome = mutate(name, TARGETS[name], args.resume, args.survivors)
        text = report(name, outcome)
        (STATE / f"{name}.txt").write_text(text + "\n")
        print(text.splitlines()[0])
        failed = failed or bool(outcome.survived) or bool(outcome.errors)
    print(f"reports: {STATE.relative_to(ROOT)}/TARGET.txt")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
