"""The contract suites fail plugins that break the contract, each on exactly the checks the
defect breaks, and pass the same harness with an honest plugin.

Each case runs the suite in a pytester directory against one plugin of ``broken_plugins.py``
(copied there) and compares the names of the failed checks with the expected ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

BROKEN_PLUGINS = (Path(__file__).parent / "broken_plugins.py").read_text()

BACKEND_TEST = """
import pytest
from fence_virt.testing import BackendContract, StuckVmContract
import broken_plugins


class TestContract({classes}):
    @pytest.fixture
    def backend_harness(self):
        return broken_plugins.harness(broken_plugins.{plugin}, stuck={stuck})
"""

LISTENER_TEST = """
import tempfile
from pathlib import Path
import pytest
from fence_virt.testing import ListenerContract, RetransmitContract, WrongKeyContract
import broken_plugins


class TestContract({classes}):
    @pytest.fixture
    def listener_harness(self):
        with tempfile.TemporaryDirectory(prefix="fvk") as short:  # for a UNIX socket path
            yield broken_plugins.{harness}(broken_plugins.{plugin}, Path(short))
"""

BACKEND_CHECKS = {
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
STUCK_CHECKS = {
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


def outcomes(pytester: pytest.Pytester, source: str) -> tuple[set[str], set[str], str]:
    """(passed, failed, output) of the checks in ``source``, run in ``pytester``'s directory."""
    pytester.makepyfile(broken_plugins=BROKEN_PLUGINS, test_contract=source)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-W", "error::DeprecationWarning"
    )
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    passed = {r.nodeid.rpartition("::")[2] for r in reports if r.when == "call" and r.passed}
    failed = {r.nodeid.rpartition("::")[2] for r in reports if r.failed}
    return passed, failed, result.stdout.str()


def backend_outcomes(
    pytester: pytest.Pytester, plugin: str, *, stuck_contract: bool = True, stuck: bool = True
) -> tuple[set[str], set[str], str]:
    classes = "BackendContract, StuckVmContract" if stuck_contract else "BackendContract"
    return outcomes(pytester, BACKEND_TEST.format(classes=classes, plugin=plugin, stuck=stuck))


def test_an_honest_backend_passes_every_check(pytester: pytest.Pytester) -> None:
    passed, failed, output = backend_outcomes(pytester, "MemoryBackendPlugin")
    assert not failed, output
    assert passed == BACKEND_CHECKS | STUCK_CHECKS


@pytest.mark.parametrize(
    ("plugin", "expected", "message"),
    [
        ("OffDoesNothingPlugin", USES_OFF, "off vm1 answered SUCCESS, VM runs"),
        ("RebootDoesNothingPlugin", {"test_reboot_restarts_a_running_vm",
                                     "test_reboot_of_a_vm_that_never_stops_is_not_success"},
         "reboot vm1 answered SUCCESS, no new start"),
        ("UnknownIsOffPlugin", {"test_unknown_vms_fail_every_operation"},
         "status of unknown VM 'fence-virt-contract-no-such-vm': answered OFF"),
        ("UnknownIsTheFirstVmPlugin", {"test_unknown_vms_fail_every_operation"},
         "off of unknown VM 'fence-virt-contract-no-such-vm': answered SUCCESS"),
        ("NoReadBackPlugin", STUCK_CHECKS, "answered SUCCESS, but the VM never changed"),
        ("RacyPlugin", {"test_concurrent_operations_on_different_vms"},
         "all off at once: answered SUCCESS but"),
        ("ConfigErrorWithoutLinePlugin", {"test_a_bad_value_is_reported_at_its_file_and_line"},
         "create's error does not start with"),
    ],
    ids=["off-without-acting", "reboot-without-acting", "unknown-is-off",
         "unknown-is-another-vm", "no-read-back", "unsafe-concurrently", "error-without-line"],
)  # fmt: skip
def test_a_broken_backend_fails_exactly_the_checks_it_breaks(
    pytester: pytest.Pytester, plugin: str, expected: set[str], message: str
) -> None:
    passed, failed, output = backend_outcomes(pytester, plugin)
    assert failed == expected, output
    assert passed == (BACKEND_CHECKS | STUCK_CHECKS) - expected
    assert message in output


def test_the_stuck_vm_checks_fail_without_stuck_vms_rather_than_skip(
    pytester: pytest.Pytester,
) -> None:
    passed, failed, output = backend_outcomes(pytester, "MemoryBackendPlugin", stuck=False)
    assert failed == STUCK_CHECKS
    assert passed == BACKEND_CHECKS
    assert "StuckVmContract: the harness gives no stuck VM that runs" in output


def test_without_the_stuck_vm_checks_a_backend_that_never_reads_back_goes_unseen(
    pytester: pytest.Pytester,
) -> None:
    """Why StuckVmContract exists: VMs that obey cannot tell a read-back from a guess."""
    passed, failed, _ = backend_outcomes(pytester, "NoReadBackPlugin", stuck_contract=False)
    assert not failed
    assert passed == BACKEND_CHECKS


LISTENER_CHECKS = {
    "test_check_finds_the_working_config_usable",
    "test_create_builds_a_listener",
    "test_a_request_reaches_the_dispatcher_once_and_its_answer_comes_back",
    "test_malformed_input_is_dropped_and_the_listener_keeps_serving",
    "test_stop_releases_what_start_took",
}
WRONG_KEY = "test_a_request_signed_with_another_key_is_not_carried_out"
RETRANSMIT = "test_retransmitted_copies_run_once"
#: every check that expects a request to be dispatched once, with the dispatcher's answer
SERVES = LISTENER_CHECKS - {
    "test_check_finds_the_working_config_usable",
    "test_create_builds_a_listener",
}


def listener_outcomes(
    pytester: pytest.Pytester, plugin: str, *, keyed: bool = False
) -> tuple[set[str], set[str], str]:
    classes = "ListenerContract"
    harness = "memory_listener_harness"
    if keyed:
        classes, harness = (
            f"{classes}, WrongKeyContract, RetransmitContract",
            f"keyed_{harness[7:]}",
        )
    return outcomes(pytester, LISTENER_TEST.format(classes=classes, plugin=plugin, harness=harness))


@pytest.mark.parametrize(
    ("plugin", "keyed"), [("MemoryListenerPlugin", False), ("KeyedListenerPlugin", True)]
)
def test_honest_listeners_pass_every_check(
    pytester: pytest.Pytester, plugin: str, keyed: bool
) -> None:
    passed, failed, output = listener_outcomes(pytester, plugin, keyed=keyed)
    assert not failed, output
    assert passed == LISTENER_CHECKS | ({WRONG_KEY, RETRANSMIT} if keyed else set())


@pytest.mark.parametrize(
    ("plugin", "expected", "message"),
    [
        ("EagerPlugin", {"test_malformed_input_is_dropped_and_the_listener_keeps_serving"},
         "malformed input reached the dispatcher"),
        ("AlwaysSuccessPlugin", SERVES - {"test_stop_releases_what_start_took"},
         "the dispatcher answered FAIL, the client got <Response.SUCCESS: 0>"),
        ("TwicePlugin", SERVES, "reached the dispatcher 2 times"),
    ],
    ids=["dispatches-garbage", "answers-success-always", "dispatches-twice"],
)  # fmt: skip
def test_a_broken_listener_fails_exactly_the_checks_it_breaks(
    pytester: pytest.Pytester, plugin: str, expected: set[str], message: str
) -> None:
    passed, failed, output = listener_outcomes(pytester, plugin)
    assert failed == expected, output
    assert passed == LISTENER_CHECKS - expected
    assert message in output


@pytest.mark.parametrize(
    ("plugin", "expected", "message"),
    [
        ("KeylessListenerPlugin", WRONG_KEY, "a request with another key reached the dispatcher"),
        ("ForgetfulListenerPlugin", RETRANSMIT, "copies sent together ran again"),
    ],
    ids=["accepts-any-key", "runs-every-copy"],
)
def test_a_listener_breaking_a_claim_fails_that_check(
    pytester: pytest.Pytester, plugin: str, expected: str, message: str
) -> None:
    passed, failed, output = listener_outcomes(pytester, plugin, keyed=True)
    assert failed == {expected}, output
    assert passed == LISTENER_CHECKS | {WRONG_KEY, RETRANSMIT} - {expected}
    assert message in output
