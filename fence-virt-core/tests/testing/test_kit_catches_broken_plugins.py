"""The contract suites fail plugins that break the contract, each on exactly the checks the
defect breaks, and pass the same harnesses with honest plugins.

One pytester run per suite: ``broken_plugins.py`` is copied into the pytester directory with
a test module holding one contract class per case below; each case's failed checks (and the
message of one of them) are then compared with what the case expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import fence_virt.testing.backend_contract
import fence_virt.testing.listener_contract
import fence_virt.testing.memory

pytest_plugins = ("pytester",)

#: imported here once, so the inner run reuses them instead of importing (and rewriting the
#: asserts of) the kit again
KIT = (
    fence_virt.testing.backend_contract,
    fence_virt.testing.listener_contract,
    fence_virt.testing.memory,
)
#: plugins the inner run does not need
INNER_ARGS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:fence_virt_testinfra",
)
BROKEN_PLUGINS = (Path(__file__).parent / "broken_plugins.py").read_text()


@dataclass(frozen=True)
class Case:
    """One contract class of the inner run: which plugin, which suites, what must fail."""

    plugin: str
    bases: str
    fixture: str
    failed: frozenset[str] = frozenset()
    #: text one of the failures must show
    message: str = ""


@dataclass
class Outcome:
    passed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    #: every failure's report, joined
    text: str = ""


def run_cases(pytester: pytest.Pytester, header: str, cases: dict[str, Case]) -> dict[str, Outcome]:
    """Run every case in one inner session; each case's outcome by its name."""
    classes = "".join(
        f"\n\nclass Test_{name}({case.bases}):\n{case.fixture.format(plugin=case.plugin)}"
        for name, case in cases.items()
    )
    pytester.makepyfile(broken_plugins=BROKEN_PLUGINS, test_contract=header + classes)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(*INNER_ARGS)
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    outcomes = {name: Outcome() for name in cases}
    for report in reports:
        _module, cls, check = report.nodeid.split("::")
        outcome = outcomes[cls.removeprefix("Test_")]
        if report.failed:
            outcome.failed.add(check)
            outcome.text += report.longreprtext
        elif report.when == "call" and report.passed:
            outcome.passed.add(check)
    return outcomes


def mismatches(cases: dict[str, Case], outcomes: dict[str, Outcome], every: set[str]) -> list[str]:
    """What differs from the expectations, one line per case."""
    wrong = []
    for name, case in cases.items():
        got = outcomes[name]
        if got.failed != case.failed or got.passed | got.failed != every:
            wrong.append(f"{name}: failed {sorted(got.failed)}, expected {sorted(case.failed)}")
        elif case.message not in got.text:
            wrong.append(f"{name}: no failure says {case.message!r}")
    return wrong


# ---------------------------------------------------------------------------------------------
# backends

BACKEND_HEADER = """
import pytest
from fence_virt.testing import BackendContract, StuckVmContract
import broken_plugins
"""
BACKEND_FIXTURE = """    @pytest.fixture
    def backend_harness(self):
        return broken_plugins.harness(broken_plugins.{plugin})
"""
NO_STUCK_FIXTURE = """    @pytest.fixture
    def backend_harness(self):
        return broken_plugins.harness(broken_plugins.{plugin}, stuck=False)
"""
BASE = {
    "test_check_finds_the_working_config_usable",
    "test_create_builds_a_backend",
    "test_status_of_running_vms_is_success",
    "test_off_powers_the_vm_off",
    "test_on_powers_the_vm_on",
    "test_reboot_restarts_a_running_vm",
    "test_reboot_leaves_an_off_vm_off",
    "test_operations_accept_the_uuid_the_host_list_gives",
    "test_unknown_vms_fail_every_operation",
    "test_devstatus_is_success",
    "test_hostlist_shows_each_vm_with_its_power",
    "test_concurrent_operations_on_different_vms",
    "test_a_bad_value_is_reported_at_its_file_and_line",
}
STUCK = {
    "test_off_of_a_vm_that_never_stops_is_not_success",
    "test_on_of_a_vm_that_never_starts_is_not_success",
    "test_reboot_of_a_vm_that_never_stops_is_not_success",
}
#: every check that powers a VM off through the backend, as the test or as its set-up
USES_OFF = {
    "test_off_powers_the_vm_off",
    "test_on_powers_the_vm_on",
    "test_reboot_leaves_an_off_vm_off",
    "test_operations_accept_the_uuid_the_host_list_gives",
    "test_hostlist_shows_each_vm_with_its_power",
    "test_concurrent_operations_on_different_vms",
    "test_off_of_a_vm_that_never_stops_is_not_success",
}


def backend(
    plugin: str,
    failed: Iterable[str] = (),
    message: str = "",
    *,
    bases: str = "BackendContract, StuckVmContract",
    fixture: str = BACKEND_FIXTURE,
) -> Case:
    return Case(plugin, bases, fixture, frozenset(failed), message)


BACKEND_CASES = {
    "honest": backend("MemoryBackendPlugin"),
    "off_without_acting": backend(
        "OffDoesNothingPlugin", USES_OFF, "off vm1 answered SUCCESS, VM runs"
    ),
    "reboot_without_acting": backend(
        "RebootDoesNothingPlugin",
        {
            "test_reboot_restarts_a_running_vm",
            "test_reboot_of_a_vm_that_never_stops_is_not_success",
        },
        "reboot vm1 answered SUCCESS, no new start",
    ),
    "status_always_on": backend(
        "StatusAlwaysOnPlugin",
        {"test_off_powers_the_vm_off"},
        "status vm1 (off): answered SUCCESS, expected OFF",
    ),
    "list_all_on": backend(
        "HostListAllOnPlugin",
        {"test_hostlist_shows_each_vm_with_its_power"},
        "hostlist says vm1 is on after off",
    ),
    "check_answers_bool": backend(
        "CheckAnswersTruePlugin",
        {
            "test_check_finds_the_working_config_usable",
            "test_a_bad_value_is_reported_at_its_file_and_line",
        },
        "fence_virt_backend_check returned True, expected Availability",
    ),
    "unknown_is_off": backend(
        "UnknownIsOffPlugin",
        {"test_unknown_vms_fail_every_operation"},
        "status of unknown VM 'fence-virt-contract-no-such-vm': answered OFF",
    ),
    "unknown_is_another_vm": backend(
        "UnknownIsTheFirstVmPlugin",
        {"test_unknown_vms_fail_every_operation"},
        "off of unknown VM 'fence-virt-contract-no-such-vm': answered SUCCESS",
    ),
    "no_read_back": backend(
        "NoReadBackPlugin", STUCK, "answered SUCCESS, but the VM never changed"
    ),
    "unsafe_concurrently": backend(
        "RacyPlugin",
        {"test_concurrent_operations_on_different_vms"},
        "all off at once: answered SUCCESS but",
    ),
    "error_without_line": backend(
        "ConfigErrorWithoutLinePlugin",
        {"test_a_bad_value_is_reported_at_its_file_and_line"},
        "create's error does not start with",
    ),
    # a harness without stuck VMs fails the stuck checks rather than skipping them
    "stuck_checks_without_stuck_vms": backend(
        "MemoryBackendPlugin",
        STUCK,
        "StuckVmContract: the harness gives no stuck VM that runs",
        fixture=NO_STUCK_FIXTURE,
    ),
    # why StuckVmContract exists: VMs that obey cannot tell a read-back from a guess
    "no_read_back_without_stuck_checks": backend(
        "NoReadBackPlugin", bases="BackendContract", fixture=NO_STUCK_FIXTURE
    ),
}


def test_the_backend_suite_fails_each_broken_backend_on_exactly_its_defect(
    pytester: pytest.Pytester,
) -> None:
    outcomes = run_cases(pytester, BACKEND_HEADER, BACKEND_CASES)
    wrong = []
    for name, case in BACKEND_CASES.items():
        every = BASE | (STUCK if "StuckVmContract" in case.bases else set())
        wrong += mismatches({name: case}, outcomes, every)
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------------------------------------
# listeners

LISTENER_HEADER = """
import tempfile
from pathlib import Path
import pytest
from fence_virt.testing import ListenerContract, RetransmitContract, WrongKeyContract
import broken_plugins
"""
MEMORY_FIXTURE = """    @pytest.fixture
    def listener_harness(self):
        with tempfile.TemporaryDirectory(prefix="fvk") as short:  # for a UNIX socket path
            yield broken_plugins.memory_listener_harness(broken_plugins.{plugin}, Path(short))
"""
KEYED_FIXTURE = MEMORY_FIXTURE.replace("memory_listener_harness", "keyed_listener_harness")
LISTENER = {
    "test_check_finds_the_working_config_usable",
    "test_create_builds_a_listener",
    "test_a_request_reaches_the_dispatcher_once_and_its_answer_comes_back",
    "test_malformed_input_is_dropped_and_the_listener_keeps_serving",
    "test_stop_releases_what_start_took",
}
WRONG_KEY = "test_a_request_signed_with_another_key_is_not_carried_out"
WRONG_KEY_REPORTED = (
    "test_a_request_signed_with_another_key_is_reported_as_an_authentication_failure"
)
RETRANSMIT = "test_retransmitted_copies_run_once"
ANSWERED = "test_a_request_reaches_the_dispatcher_once_and_its_answer_comes_back"
MALFORMED = "test_malformed_input_is_dropped_and_the_listener_keeps_serving"
KEYED_BASES = "ListenerContract, WrongKeyContract, RetransmitContract"


def listener(plugin: str, failed: Iterable[str] = (), message: str = "") -> Case:
    return Case(plugin, "ListenerContract", MEMORY_FIXTURE, frozenset(failed), message)


def keyed(plugin: str, failed: Iterable[str] = (), message: str = "") -> Case:
    return Case(plugin, KEYED_BASES, KEYED_FIXTURE, frozenset(failed), message)


LISTENER_CASES = {
    "honest": listener("MemoryListenerPlugin"),
    "honest_keyed": keyed("KeyedListenerPlugin"),
    "dispatches_garbage": listener(
        "EagerPlugin", {MALFORMED}, "malformed input reached the dispatcher"
    ),
    "answers_success_always": listener(
        "AlwaysSuccessPlugin",
        {ANSWERED, MALFORMED},
        "the dispatcher answered FAIL, the client got <Response.SUCCESS: 0>",
    ),
    "dispatches_twice": listener(
        "TwicePlugin",
        {ANSWERED, MALFORMED, "test_stop_releases_what_start_took"},
        "reached the dispatcher 2 times",
    ),
    "accepts_any_key": keyed(
        "KeylessListenerPlugin",
        {WRONG_KEY, WRONG_KEY_REPORTED},
        "a request with another key reached the dispatcher",
    ),
    "runs_every_copy": keyed(
        "ForgetfulListenerPlugin", {RETRANSMIT}, "copies sent together ran again"
    ),
}


def test_the_listener_suite_fails_each_broken_listener_on_exactly_its_defect(
    pytester: pytest.Pytester,
) -> None:
    outcomes = run_cases(pytester, LISTENER_HEADER, LISTENER_CASES)
    wrong = []
    for name, case in LISTENER_CASES.items():
        keyed = {WRONG_KEY, WRONG_KEY_REPORTED, RETRANSMIT}
        every = LISTENER | (keyed if case.bases == KEYED_BASES else set())
        wrong += mismatches({name: case}, outcomes, every)
    assert not wrong, "\n".join(wrong)
