"""The read-back behind every success: a hypervisor that accepts destroy or create while the
domain stays in its old state must never get a SUCCESS.

Why a test double: no libvirt driver this project can run accepts ``virDomainDestroy``
or ``virDomainCreate`` and then leaves the domain in its old state. The test driver changes the
state inside the call; QEMU through libvirtd kills or starts the process before the call
returns, and a guest that dies right after start cannot be made to do so on demand. Real
hypervisors do it (a destroy the kernel finishes late, Xen's delayed teardown, a guest that
crashes at once, a management layer restarting what was destroyed), and only then do the
Fencer's read-back branches ("did not become ...", the time running out, a copy running
again) run. The double wraps a *real* test-driver connection: every call but the changed
ones goes to libvirt, so lookups and the state read back are libvirt's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt
import pytest

from fence_virt import Target
from fence_virt.errors import BackendError
from fence_virt.protocol import Response
from fence_virt_libvirt import DeadlinePassed, Fencer, Hypervisor, current_state

T = TypeVar("T")

#: what the double may do instead of a destroy or a create
IGNORE_DESTROY = "destroy"  # accept virDomainDestroy, change nothing
IGNORE_CREATE = "create"  # accept virDomainCreate / virDomainCreateXML, change nothing
CREATE_PAUSED = "create-paused"  # start the domain, then pause it at once
FAIL_DESTROY = "destroy-fails"  # virDomainDestroy raises, nothing changes
DESTROY_THEN_FAIL = "destroy-then-fails"  # the domain is destroyed, then the call raises
DENY_LOOKUP = "deny-lookup"  # every lookup raises VIR_ERR_ACCESS_DENIED (a polkit/ACL refusal)


class StubbornHypervisor(Hypervisor):
    """A :class:`Hypervisor` over a real URI whose connection misbehaves as ``behaviours``
    say; ``after_destroy(uuid)`` runs after every destroy the double lets through."""

    def __init__(
        self,
        uri: str,
        *behaviours: str,
        after_destroy: Callable[[str], None] = lambda _uuid: None,
    ) -> None:
        super().__init__(uri)
        self.behaviours = frozenset(behaviours)
        self.after_destroy = after_destroy
        #: (method, domain UUID) of every state change asked for, in order
        self.asked: list[tuple[str, str]] = []
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()

    def call(self, action: Callable[[Any], T]) -> T:
        return super().call(lambda conn: action(_Connection(conn, self)))


class _Connection:
    def __init__(self, conn: Any, hv: StubbornHypervisor) -> None:
        self._conn = conn
        self._hv = hv

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _lookup(self, how: str, key: str) -> _Domain:
        if DENY_LOOKUP in self._hv.behaviours:
            exc = libvirt.libvirtError("access denied by the test double")
            exc.err = (libvirt.VIR_ERR_ACCESS_DENIED, 0, "access denied", 2, "", "", "", 0, 0)
            raise exc
        return _Domain(getattr(self._conn, how)(key), self._hv)

    def lookupByUUIDString(self, uuid: str) -> _Domain:
        return self._lookup("lookupByUUIDString", uuid)

    def lookupByName(self, name: str) -> _Domain:
        return self._lookup("lookupByName", name)

    def createXML(self, xml: str, flags: int = 0) -> Any:
        self._hv.asked.append(("createXML", ""))
        if IGNORE_CREATE in self._hv.behaviours:
            return None
        return self._conn.createXML(xml, flags)


class _Domain:
    def __init__(self, dom: Any, hv: StubbornHypervisor) -> None:
        self._dom = dom
        self._hv = hv

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dom, name)

    def destroy(self) -> int:
        uuid = self._dom.UUIDString()
        self._hv.asked.append(("destroy", uuid))
        if IGNORE_DESTROY in self._hv.behaviours:
            return 0
        if FAIL_DESTROY in self._hv.behaviours:
            raise libvirt.libvirtError("destroy refused by the test double")
        result = int(self._dom.destroy())
        if DESTROY_THEN_FAIL in self._hv.behaviours:
            raise libvirt.libvirtError("destroyed, then the reply was lost")
        self._hv.after_destroy(uuid)
        return result

    def create(self) -> int:
        self._hv.asked.append(("create", self._dom.UUIDString()))
        if IGNORE_CREATE in self._hv.behaviours:
            return 0
        result = int(self._dom.create())
        if CREATE_PAUSED in self._hv.behaviours:
            self._dom.suspend()
        return result


# ---------------------------------------------------------------------------------------------

RUNNING = "5a7e0000-0000-4000-8000-000000000001"  # states.xml: "running"
SHUTOFF = "5a7e0000-0000-4000-8000-000000000005"  # states.xml: "shutoff"
#: seconds the Fencer waits for a state in these tests
SHORT = 0.3


@pytest.fixture
def stubborn(data_uri):
    """``stubborn(*behaviours)`` -> a Fencer over states.xml whose connection misbehaves."""
    fencers: list[Fencer] = []

    def make(*behaviours: str, timeout: float = SHORT) -> tuple[Fencer, StubbornHypervisor]:
        hv = StubbornHypervisor(data_uri("states.xml"), *behaviours)
        fencer = Fencer([hv], timeout)
        fencers.append(fencer)
        return fencer, hv

    yield make
    for fencer in fencers:
        fencer.close()


def state(hv, uuid):
    return current_state(hv, uuid)


def test_off_whose_destroy_changes_nothing_is_an_error_after_the_timeout(stubborn, fence):
    fencer, hv = stubborn(IGNORE_DESTROY)
    started = time.monotonic()
    with pytest.raises(
        BackendError,
        match=r"VM running \(5a7e.*\) on test://.* did not become shut off: it is "
        r"running after 0.3 s",
    ):
        fence(fencer, "off", "running")
    assert time.monotonic() - started >= SHORT
    assert hv.asked == [("destroy", RUNNING)]
    assert state(hv, RUNNING) == 1


def test_on_whose_create_changes_nothing_is_an_error_at_once(stubborn, fence):
    """Shut off after a start is hopeless: no waiting for the timeout."""
    fencer, hv = stubborn(IGNORE_CREATE, timeout=30)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not become running: it is shutoff$"):
        fence(fencer, "on", "shutoff")
    assert time.monotonic() - started < 5
    assert hv.asked == [("create", SHUTOFF)]


def test_on_that_leaves_the_vm_paused_is_an_error_after_the_timeout(stubborn, fence):
    fencer, hv = stubborn(CREATE_PAUSED)
    with pytest.raises(BackendError, match=r"did not become running: it is paused after 0.3 s"):
        fence(fencer, "on", "shutoff")
    assert state(hv, SHUTOFF) == 3


def test_reboot_whose_destroy_changes_nothing_starts_nothing(stubborn, fence):
    fencer, hv = stubborn(IGNORE_DESTROY)
    with pytest.raises(BackendError, match="did not become shut off: it is running"):
        fence(fencer, "reboot", "running")
    assert hv.asked == [("destroy", RUNNING)]


def test_reboot_whose_start_changes_nothing_is_an_error_naming_the_vm_off(stubborn, fence):
    fencer, hv = stubborn(IGNORE_CREATE)
    with pytest.raises(
        BackendError,
        match=r"is off but did not start again: .* did not become running: it is "
        r"shutoff",
    ):
        fence(fencer, "reboot", "running")
    assert hv.asked == [("destroy", RUNNING), ("create", RUNNING)]
    assert state(hv, RUNNING) == 5


def test_a_copy_that_runs_again_after_the_destroy_is_an_error(data_uri, fence):
    """A copy on another URI starts while the first is destroyed (a migration finishing, a
    management layer restarting the VM elsewhere): off must not answer success."""
    target = Hypervisor(data_uri("copies-b.xml"))
    mig = "a1a1a1a1-0000-4000-8000-000000000001"
    target.call(lambda conn: conn.lookupByUUIDString(mig).destroy())

    def migrate_in(uuid: str) -> None:
        target.call(lambda conn: conn.lookupByUUIDString(uuid).create())

    source = StubbornHypervisor(data_uri("copies-a.xml"), after_destroy=migrate_in)
    fencer = Fencer([source, target], SHORT)
    try:
        with pytest.raises(
            BackendError, match=rf"VM {mig} still runs on test://.*copies-b.xml \(running\) after"
        ):
            fence(fencer, "off", "mig")
        assert source.asked == [("destroy", mig)]
    finally:
        fencer.close()


def test_the_read_back_is_what_answers_success(stubborn, fence):
    """The same double letting every change through: SUCCESS, so the errors above come from
    the states read back, not from the double."""
    fencer, hv = stubborn()
    assert fence(fencer, "off", "running") is Response.SUCCESS
    assert fence(fencer, "on", "shutoff") is Response.SUCCESS
    assert fence(fencer, "reboot", "paused") is Response.SUCCESS
    assert [state(hv, u) for u in (RUNNING, SHUTOFF)] == [5, 1]


# --- the request's deadline: no state change is started after it ---------------------------


def target(domain: str, deadline_in: float) -> Target:
    """A request for ``domain`` whose deadline is ``deadline_in`` seconds from now."""
    return Target(
        domain,
        by_uuid=False,
        requester="198.51.100.7",
        seqno=1,
        deadline=time.monotonic() + deadline_in,
    )


@pytest.mark.parametrize(("operation", "domain"), [("off", "running"), ("reboot", "paused")])
def test_no_destroy_after_the_deadline(stubborn, operation, domain) -> None:
    fencer, hv = stubborn()
    with pytest.raises(DeadlinePassed, match=r"deadline passed before destroying VM \w+ .*: not"):
        getattr(fencer, operation)(target(domain, -0.01))
    assert hv.asked == []
    assert fencer.status(target(domain, 30)) is Response.SUCCESS  # still running


def test_no_start_after_the_deadline(stubborn) -> None:
    fencer, hv = stubborn()
    with pytest.raises(DeadlinePassed, match="deadline passed before starting VM shutoff"):
        fencer.on(target("shutoff", -0.01))
    assert hv.asked == []


def test_a_reboot_whose_deadline_passes_while_off_is_left_off(data_uri) -> None:
    """The destroy was issued in time; the start would come after the deadline: not sent."""
    hv = StubbornHypervisor(data_uri("states.xml"), after_destroy=lambda _uuid: time.sleep(0.3))
    fencer = Fencer([hv], 30)
    try:
        with pytest.raises(
            BackendError, match="is off but did not start again: the request's deadline passed"
        ):
            fencer.reboot(target("running", 0.2))
        assert hv.asked == [("destroy", RUNNING)]
        assert state(hv, RUNNING) == 5
    finally:
        fencer.close()


def test_a_wait_for_the_state_ends_at_the_deadline(stubborn) -> None:
    fencer, hv = stubborn(IGNORE_DESTROY, timeout=30)
    started = time.monotonic()
    with pytest.raises(BackendError, match="it is running at the request's deadline"):
        fencer.off(target("running", 0.3))
    assert 0.3 <= time.monotonic() - started < 5
    assert hv.asked == [("destroy", RUNNING)]


def test_a_vm_busy_past_the_deadline_is_not_touched(stubborn) -> None:
    """Another request holds the VM (by its UUID) until after this one's deadline."""
    fencer, hv = stubborn()
    holder = Target(RUNNING, by_uuid=True, requester="198.51.100.7", seqno=2)
    with fencer._find(holder, "reboot") as found:
        assert found is not None
        with pytest.raises(DeadlinePassed, match=f"VM {RUNNING} was busy with another operation"):
            fencer.off(target("running", 0.2))
    assert hv.asked == []


# --- found by scripts/mutation (docs/mutation.md) ----------------------------------------------


@pytest.mark.parametrize("domain", ["crashed", "pmsuspended"])
def test_a_crashed_or_suspended_vm_is_not_off_until_it_reads_shut_off(stubborn, fence, domain):
    """Only "shut off" (or gone) is off: a destroy that leaves the VM crashed or suspended
    to memory is not success."""
    fencer, hv = stubborn(IGNORE_DESTROY)
    with pytest.raises(
        BackendError, match=rf"VM {domain} .* did not become shut off: it is {domain} after"
    ):
        fence(fencer, "off", domain)
    assert hv.asked[0][0] == "destroy"


def test_a_destroy_that_fails_while_the_vm_runs_is_an_error_at_once(stubborn, fence):
    fencer, hv = stubborn(FAIL_DESTROY, timeout=30)
    started = time.monotonic()
    with pytest.raises(BackendError, match="destroy refused by the test double"):
        fence(fencer, "off", "running")
    assert time.monotonic() - started < 5  # no wait for a state that cannot come
    assert state(hv, RUNNING) == 1


def test_a_destroy_that_raises_after_the_vm_went_off_is_success(stubborn, fence):
    """The reply was lost, not the destroy (a rerun after a reconnect looks the same)."""
    fencer, hv = stubborn(DESTROY_THEN_FAIL)
    assert fence(fencer, "off", "running") is Response.SUCCESS
    assert state(hv, RUNNING) == 5


def test_close_closes_every_hypervisor(data_uri):
    hvs = [StubbornHypervisor(data_uri(name)) for name in ("states.xml", "copies-a.xml")]
    Fencer(hvs, SHORT).close()
    assert [hv.closed for hv in hvs] == [1, 1]


def test_a_request_without_a_deadline_waits_for_a_busy_vm_as_long_as_it_takes(stubborn):
    fencer, hv = stubborn()
    holder = Target(RUNNING, by_uuid=True, requester="198.51.100.7", seqno=2)
    answers: list[Response] = []
    waiting = Target("running", by_uuid=False, requester="198.51.100.7", seqno=3)
    worker = threading.Thread(target=lambda: answers.append(fencer.off(waiting)))
    with fencer._find(holder, "reboot"):
        worker.start()
        time.sleep(1.5)  # longer than any fixed wait a lock could have
        assert answers == []
    worker.join(10)
    assert answers == [Response.SUCCESS]
    assert hv.asked == [("destroy", RUNNING)]


def test_a_vm_undefined_while_waiting_for_its_lock_is_fail(data_uri, caplog):
    hv = StubbornHypervisor(data_uri("states.xml"))
    fencer = Fencer([hv], SHORT)
    holder = Target(SHUTOFF, by_uuid=True, requester="198.51.100.7", seqno=2)
    answers: list[Response] = []
    waiting = Target("shutoff", by_uuid=False, requester="198.51.100.7", seqno=3)
    worker = threading.Thread(target=lambda: answers.append(fencer.on(waiting)))
    try:
        with fencer._find(holder, "off"):
            worker.start()
            time.sleep(0.3)
            hv.call(lambda conn: conn.lookupByUUIDString(SHUTOFF).undefine())
        worker.join(10)
        assert answers == [Response.FAIL]
        assert hv.asked == []
        assert f"on shutoff: VM shutoff ({SHUTOFF}) on test://" in caplog.text
        assert "vanished meanwhile" in caplog.text
    finally:
        fencer.close()


def test_a_request_past_its_deadline_does_not_wait_for_a_busy_vm(stubborn):
    """Its deadline has passed when it arrives and the VM is busy: refused at once, not after
    the other operation ends."""
    fencer, hv = stubborn()
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with fencer._find(Target(RUNNING, by_uuid=True, requester="r", seqno=2), "reboot"):
            holding.set()
            done.wait(0.6)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    started = time.monotonic()
    try:
        with pytest.raises(DeadlinePassed, match="was busy with another operation"):
            fencer.off(target("running", -0.01))
        assert time.monotonic() - started < 0.4
    finally:
        done.set()
        holder.join(5)
    assert hv.asked == []


def test_a_copy_whose_destroy_fails_does_not_spare_the_others(data_uri, fence):
    """The paused copy's destroy fails: off is FAIL, but the running copy on the other URI
    is destroyed all the same (the less of the VM left running, the better)."""
    mig = "a1a1a1a1-0000-4000-8000-000000000001"
    source = StubbornHypervisor(data_uri("copies-a.xml"), FAIL_DESTROY)
    target = StubbornHypervisor(data_uri("copies-b.xml"))
    fencer = Fencer([source, target], SHORT)
    try:
        with pytest.raises(BackendError, match="destroy refused by the test double"):
            fence(fencer, "off", "mig")
        assert (source.asked, target.asked) == ([("destroy", mig)], [("destroy", mig)])
        assert (state(source, mig), state(target, mig)) == (3, 5)
    finally:
        fencer.close()


def test_a_wait_ends_at_the_timeout_when_the_deadline_is_later(stubborn) -> None:
    """At its 0.3 s limit, not a poll later (a poll is at most 0.1 s)."""
    fencer, hv = stubborn(IGNORE_DESTROY)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"it is running after 0.3 s$"):
        fencer.off(target("running", 30))
    assert time.monotonic() - started < 0.9
    assert hv.asked == [("destroy", RUNNING)]


@pytest.mark.parametrize("operation", ["status", "off"])
def test_a_lookup_refused_for_another_reason_is_not_an_unknown_vm(stubborn, fence, operation):
    """Only VIR_ERR_NO_DOMAIN means "not here": a lookup libvirt refuses (access denied)
    leaves the VM's whereabouts unknown, an error rather than a plain FAIL for no such VM."""
    fencer, hv = stubborn(DENY_LOOKUP)
    with pytest.raises(BackendError, match=r"cannot tell where VM running is: .*access denied"):
        fence(fencer, operation, "running")
    assert hv.asked == []
