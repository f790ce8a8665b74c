"""The backend object against the fake engine on loopback: every operation, every status,
names and UUIDs, tokens, TLS, timeouts, permissions, clusters, concurrency.

The engine is a test double (fence_virt_testinfra.ovirt_engine: no oVirt engine can run
here). What the backend answers is checked against the engine's own table, never against
the backend's word.
"""

from __future__ import annotations

import threading

import pytest

from fence_virt.errors import BackendError, LocalError
from fence_virt.protocol import HostState, Response
from fence_virt_backend_ovirt.engine import power_of
from fence_virt_testinfra.ovirt_engine import FakeVm
from fence_virt_testinfra.tls import throwaway_pki

#: the fake engine account the backend logs in as (conftest.USER)
USER = "fence@internal"

ON_STATUSES = (
    "up",
    "paused",
    "powering_up",
    "powering_down",
    "migrating",
    "reboot_in_progress",
    "wait_for_launch",
    "saving_state",
    "restoring_state",
    "suspended",
)
UNVOUCHED = ("unknown", "not_responding", "image_locked", "unassigned", "")


def test_every_operation_is_verified_on_the_engine(engine, backend, fence):
    assert fence(backend, "status", "vm1") is Response.SUCCESS
    assert fence(backend, "off", "vm1") is Response.SUCCESS
    assert engine.vm("vm1").status == "down"
    assert engine.vm("vm1").actions == ["stop"]
    assert fence(backend, "status", "vm1") is Response.OFF
    assert fence(backend, "off", "vm1") is Response.SUCCESS  # already off: nothing sent
    assert engine.vm("vm1").actions == ["stop"]
    assert fence(backend, "on", "vm1") is Response.SUCCESS
    assert engine.vm("vm1").status == "up"
    boots = engine.vm("vm1").boots
    assert fence(backend, "reboot", "vm1") is Response.SUCCESS
    assert engine.vm("vm1").status == "up"
    assert engine.vm("vm1").boots == boots + 1
    assert engine.vm("vm1").actions == ["stop", "start", "stop", "start"]
    assert fence(backend, "on", "vm1") is Response.SUCCESS  # already up: nothing sent
    assert len(engine.vm("vm1").actions) == 4
    assert backend.devstatus() is Response.SUCCESS


def test_reboot_leaves_an_off_vm_off(engine, backend, fence):
    assert fence(backend, "reboot", "vm4") is Response.SUCCESS
    assert engine.vm("vm4").status == "down"
    assert engine.vm("vm4").actions == []


def test_operations_by_uuid(engine, backend, fence):
    vm_id = engine.vm("vm2").id
    assert fence(backend, "off", vm_id.upper()) is Response.SUCCESS  # canonical, any case
    assert engine.vm("vm2").status == "down"
    assert fence(backend, "status", vm_id.replace("-", ""), by_uuid=True) is Response.OFF
    assert fence(backend, "on", vm_id) is Response.SUCCESS
    assert engine.vm("vm2").status == "up"


@pytest.mark.parametrize("status", ON_STATUSES)
def test_running_ish_statuses_are_on(engine, backend, fence, status):
    with engine.locked:
        engine.vm("vm1").status = status
    assert fence(backend, "status", "vm1") is Response.SUCCESS


@pytest.mark.parametrize("status", UNVOUCHED)
def test_statuses_the_engine_cannot_vouch_for_are_errors(engine, backend, failure, status):
    with engine.locked:
        engine.vm("vm1").status = status
    message = failure(backend, "status", "vm1")
    assert "the engine cannot vouch for its power state" in message


def test_status_table_covers_every_engine_status():
    assert {power_of(s).value for s in ON_STATUSES} == {"on"}
    assert power_of("down").value == "off"
    assert {power_of(s).value for s in UNVOUCHED} == {"unknown"}


def test_a_vm_stuck_in_unknown_is_never_fenced_by_guess(engine, backend, fence, failure):
    engine.add_vm(FakeVm("lost", status="unknown", users={USER}))
    assert fence(backend, "status", "lost") is Response.FAIL
    assert "Cannot stop VM. VM is unknown" in failure(backend, "off", "lost")
    assert fence(backend, "reboot", "lost") is Response.FAIL
    assert "cannot vouch" in failure(backend, "on", "lost")
    assert engine.vm("lost").status == "unknown"


def test_names_differing_only_in_case_are_different_vms(engine, backend, fence):
    engine.add_vm(FakeVm("Web", users={USER}))
    engine.add_vm(FakeVm("web", users={USER}))
    assert fence(backend, "off", "web") is Response.SUCCESS
    assert engine.vm("web").status == "down"
    assert engine.vm("Web").status == "up"
    assert fence(backend, "status", "Web") is Response.SUCCESS
    assert fence(backend, "status", "WEB") is Response.FAIL
    assert fence(backend, "status", "VM1") is Response.FAIL


def test_search_is_case_sensitive_and_filtered(engine, backend, fence):
    assert fence(backend, "status", "vm1") is Response.SUCCESS
    assert engine.searches == [("vms", {"search": "name=vm1", "case_sensitive": "true"})]
    assert engine.requests
    assert all(r[2] == "true" for r in engine.requests)  # Filter: true on every request


def test_an_engine_that_ignores_case_sensitive_still_cannot_mislead(engine, backend, fence):
    """Only the VM whose name is exactly the one asked for is taken, whatever the search
    returns (an engine that ignored case_sensitive would return both)."""
    engine.add_vm(FakeVm("Web", users={USER}))
    engine.add_vm(FakeVm("web", status="down", users={USER}))
    engine.case_blind = True
    assert fence(backend, "status", "web") is Response.OFF
    assert fence(backend, "status", "Web") is Response.SUCCESS


def test_a_wildcard_is_not_a_name(engine, backend, failure):
    assert "no VM 'vm*'" in failure(backend, "off", "vm*")
    assert all(vm.status == "up" for vm in engine.vms.values() if vm.name != "vm4")
    assert not [r for r in engine.requests if "*" in r[1]]


def test_two_vms_with_the_same_exact_name_are_refused(engine, backend, failure):
    engine.add_vm(FakeVm("twin", users={USER}))
    engine.add_vm(FakeVm("twin", users={USER}))
    assert "several VMs are called 'twin'" in failure(backend, "off", "twin")
    assert all(vm.status == "up" for vm in engine.vms.values() if vm.name == "twin")


def test_unknown_and_invisible_vms_fail(engine, backend, failure):
    engine.add_vm(FakeVm("not-mine"))  # no permission for USER: invisible with Filter: true
    assert "no VM 'not-mine' is visible to" in failure(backend, "off", "not-mine")
    assert engine.vm("not-mine").status == "up"
    assert "no VM 'nosuch'" in failure(backend, "status", "nosuch")
    vm_id = engine.vm("not-mine").id
    assert f"no VM '{vm_id}'" in failure(backend, "off", vm_id)
    assert engine.vm("not-mine").actions == []


def test_hostlist_is_what_the_account_sees(engine, backend):
    engine.add_vm(FakeVm("not-mine"))
    engine.add_vm(FakeVm("frozen", status="paused", users={USER}))
    engine.add_vm(FakeVm("lost", status="not_responding", users={USER}))
    rows = list(backend.hostlist("198.51.100.7"))
    assert rows == [
        HostState("frozen", engine.vm("frozen").id, 3),
        HostState("lost", engine.vm("lost").id, 0),
        HostState("vm1", engine.vm("vm1").id, 1),
        HostState("vm2", engine.vm("vm2").id, 1),
        HostState("vm3", engine.vm("vm3").id, 1),
        HostState("vm4", engine.vm("vm4").id, 5),
    ]


def test_off_of_a_vm_that_never_goes_down_fails_after_the_power_timeout(
    engine, start_backend, failure
):
    engine.add_vm(FakeVm("stuck", stuck=True, users={USER}))
    backend = start_backend(power_timeout=0.5)
    assert "is still up 0.5 s later, not down" in failure(backend, "off", "stuck")
    assert "is still up 0.5 s later, not down" in failure(backend, "reboot", "stuck")
    engine.add_vm(FakeVm("stuck-off", status="down", stuck=True, users={USER}))
    assert "is still down 0.5 s later, not up" in failure(backend, "on", "stuck-off")


def test_an_expired_token_is_renewed_once(engine, backend, fence):
    assert fence(backend, "status", "vm1") is Response.SUCCESS
    assert engine.tokens_issued == 1
    engine.expire_tokens()
    assert fence(backend, "off", "vm1") is Response.SUCCESS
    assert engine.tokens_issued == 2
    assert fence(backend, "status", "vm1") is Response.OFF
    assert engine.tokens_issued == 2


def test_a_token_refused_again_after_renewal_fails_the_request(engine, backend, failure):
    engine.token_lifetime = 0.0  # every token is expired as soon as it is issued
    engine.expire_tokens()
    message = failure(backend, "status", "vm1")
    assert "HTTP response code is 401" in message
    assert engine.tokens_issued == 2  # the first one, and exactly one renewal


def test_wrong_password_is_a_clear_error(engine, start_backend, tmp_path):
    bad = tmp_path / "bad.pass"
    bad.write_text("wrong\n")
    bad.chmod(0o600)
    with pytest.raises(BackendError, match=rf"refused to log in {USER}: Cannot authenticate"):
        start_backend(password_file=bad)


def test_wrong_ca_is_a_clear_error(engine, start_backend, tmp_path):
    other = throwaway_pki(tmp_path / "other", tag="other")
    with pytest.raises(BackendError) as raised:
        start_backend(ca_file=other.ca_file)
    message = str(raised.value)
    assert f"cannot reach engine https://127.0.0.1:{engine.port}" in message
    assert f"TLS certificate is not trusted by ca_file {other.ca_file}" in message
    assert "set ca_file to the engine's CA" in message
    assert engine.tokens_issued == 0


def test_no_ca_file_means_the_system_store_which_does_not_know_the_engine(start_backend):
    with pytest.raises(BackendError, match="not trusted by the system CA store"):
        start_backend(ca_file=None)


def test_insecure_skips_the_check_with_a_loud_warning(engine, start_backend, fence, caplog):
    backend = start_backend(ca_file=None, insecure="yes")
    assert fence(backend, "status", "vm1") is Response.SUCCESS
    assert "INSECURE: insecure = yes: the engine's TLS certificate is NOT checked" in caplog.text


def test_a_slow_engine_fails_the_request_within_the_timeout(engine, backend, failure, fence):
    engine.add_vm(FakeVm("slow", slow=5.0, users={USER}))
    vm_id = engine.vm("slow").id
    message = failure(backend, "status", vm_id)
    assert "cannot reach engine" in message
    assert "Operation timed out" in message
    assert fence(backend, "status", "vm1") is Response.SUCCESS  # the backend still works


def test_a_slow_sso_service_fails_within_the_timeout(engine, start_backend):
    engine.sso_delay = 5.0
    with pytest.raises(BackendError, match=r"no answer within 1 s"):
        start_backend(timeout=1)


def test_an_unreachable_engine_fails_requests_until_it_is_back(engine, backend, fence, failure):
    assert fence(backend, "status", "vm1") is Response.SUCCESS
    engine.stop()
    assert "cannot reach engine" in failure(backend, "status", "vm1")
    assert backend.devstatus is not None
    assert fence(backend, "devstatus", "") is Response.FAIL
    engine.start(port=engine.port)
    assert fence(backend, "status", "vm1") is Response.SUCCESS


def test_without_filter_a_user_account_is_refused(engine, start_backend):
    with pytest.raises(BackendError, match="HTTP response code is 403"):
        start_backend(filter="no")


def test_an_admin_without_filter_sees_every_vm(engine, start_backend, tmp_path, fence):
    engine.add_vm(FakeVm("not-mine"))
    admin = tmp_path / "admin.pass"
    admin.write_text("admin-secret")
    admin.chmod(0o600)
    backend = start_backend(username="admin@internal", password_file=admin, filter="no")
    assert fence(backend, "status", "not-mine") is Response.SUCCESS
    assert all(r[2] is None for r in engine.requests)


def test_cluster_limits_the_list_and_the_operations(engine, start_backend, failure):
    engine.add_vm(FakeVm("elsewhere", cluster="others", users={USER}))
    backend = start_backend(cluster="guests")
    names = [row.domain for row in backend.hostlist("198.51.100.7")]
    assert names == ["vm1", "vm2", "vm3", "vm4"]
    assert "is not in cluster guests" in failure(backend, "off", "elsewhere")
    assert engine.vm("elsewhere").status == "up"
    assert "VM elsewhere" in backend.describe() or "cluster guests" in backend.describe()


def test_an_unknown_cluster_stops_the_start(start_backend):
    with pytest.raises(BackendError, match="no cluster called 'Guests' is visible"):
        start_backend(cluster="Guests")


def test_one_token_and_a_bounded_pool_for_concurrent_fences(engine, start_backend, fence):
    names = [f"many{i}" for i in range(12)]
    for name in names:
        engine.add_vm(FakeVm(name, down_after=0.3, users={USER}))
    engine.delay = 0.02
    backend = start_backend(connections=3)
    answers: dict[str, Response] = {}

    def off(name: str) -> None:
        answers[name] = fence(backend, "off", name)

    threads = [threading.Thread(target=off, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == dict.fromkeys(names, Response.SUCCESS)
    assert all(engine.vm(name).status == "down" for name in names)
    assert engine.tokens_issued == 1
    assert 1 < engine.max_in_flight <= 3


def test_no_request_waits_for_another_vms_power_off(engine, start_backend, fence):
    """With a single connection, status requests for vm2 are answered while vm1's off is
    still polling its slow power-off (ordering only: no timing is asserted)."""
    with engine.locked:
        engine.vm("vm1").down_after = 3.0
    backend = start_backend(connections=1)
    done = threading.Event()
    answer: list[Response] = []

    def off() -> None:
        answer.append(fence(backend, "off", "vm1"))
        done.set()

    thread = threading.Thread(target=off)
    thread.start()
    try:
        while engine.vm("vm1").status != "powering_down":
            assert not done.wait(0.01)
        for _ in range(3):
            assert fence(backend, "status", "vm2") is Response.SUCCESS
        assert not done.is_set(), "vm1's off finished before vm2's status requests"
        assert engine.vm("vm1").status == "powering_down"
    finally:
        thread.join(30)
    assert answer == [Response.SUCCESS]


def test_stop_revokes_the_token(engine, backend, fence):
    assert fence(backend, "status", "vm1") is Response.SUCCESS
    backend.stop()
    assert engine.logouts == 1


def test_methods_outside_start_and_stop_are_a_local_error(start_backend):
    backend = start_backend()
    backend.stop()
    with pytest.raises(LocalError):
        backend.hostlist("x")
