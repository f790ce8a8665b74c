"""Our fence_virtd (multicast listener, this backend) and our fence_xvm, in a namespace,
on the cases of the issue "No false success, no silent stop":

* the same VM on two URIs (a migration source paused on ``uri``, the running copy on
  ``uri1``): off must shut off both, status must then say OFF; a name meaning two VMs is
  refused unless the request names a UUID;
* libvirtd stopped (SIGSTOP) during an off: the agent gets its failure at the daemon's
  deadline, and when libvirtd resumes the VM is not destroyed late;
* the static map: off, on, reboot and status all refused for a VM outside the map.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from fence_virt_testinfra.c_suite import run_in
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_XVM, running_fence_virtd

pytestmark = pytest.mark.netns

DOMAIN = (
    "<domain type='test'{ns}><name>{name}</name><uuid>{uuid}</uuid>{state}<memory>65536</memory>"
    "<vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>"
)
RUNSTATE_NS = " xmlns:test='http://libvirt.org/schemas/domain/test/1.0'"
MIG = "a1a1a1a1-0000-4000-8000-000000000001"
TWIN_A = "a1a1a1a1-0000-4000-8000-0000000000a2"
TWIN_B = "a1a1a1a1-0000-4000-8000-0000000000b2"


def node(path: Path, *domains: tuple[str, str, int | None]) -> str:
    """A test-driver node file holding ``(name, uuid, runstate or None for running)``."""
    body = "".join(
        DOMAIN.format(
            ns=RUNSTATE_NS if state is not None else "",
            name=name,
            uuid=uuid,
            state=f"<test:runstate>{state}</test:runstate>" if state is not None else "",
        )
        for name, uuid, state in domains
    )
    path.write_text(f"<node><memory>8388608</memory>{body}</node>\n")
    return f"test://{path}"


def config(path: Path, key_file: Path, uris: list[str], daemon: str = "") -> Path:
    keys = "".join(f'\t\turi{i or ""} = "{uri}";\n' for i, uri in enumerate(uris))
    path.write_text(
        f'fence_virtd {{\n\tlistener = "multicast";\n\tbackend = "libvirt";\n{daemon}}}\n'
        f'listeners {{\n\tmulticast {{\n\t\tkey_file = "{key_file}";\n\t\tinterface = "lo";\n'
        f"\t}}\n}}\nbackends {{\n\tlibvirt {{\n{keys}\t}}\n}}\n"
    )
    path.chmod(0o600)
    return path


Agent = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def xvm(ns: NetNS, key_file: Path) -> Agent:
    """``xvm("-o", "off", "-H", "vm")``: our fence_xvm in the namespace; text out."""

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = run_in(ns, [FENCE_XVM, "-k", str(key_file), *args], timeout=timeout)
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    return run


def listed(xvm: Agent, name: str) -> list[str]:
    rows = [line.split() for line in xvm("-o", "list").stdout.splitlines()]
    return [row[2] for row in rows if row[0] == name]


def test_off_of_a_vm_on_two_uris_turns_off_both(ns, key_file, tmp_path, xvm) -> None:
    source = node(tmp_path / "a.xml", ("mig", MIG, 3), ("twin", TWIN_A, None))
    target = node(tmp_path / "b.xml", ("mig", MIG, None), ("twin", TWIN_B, None))
    conf = config(tmp_path / "fence_virt.conf", key_file, [source, target])
    with running_fence_virtd(ns, tmp_path / "fvd", conf, debug=1) as daemon:
        assert xvm("-o", "status", "-H", "mig").returncode == 0
        assert xvm("-o", "off", "-H", "mig").returncode == 0
        status = xvm("-o", "status", "-H", "mig")
        assert (status.returncode, status.stdout) == (2, "Status: OFF\n")
        assert listed(xvm, "mig") == ["off", "off"]

        refused = xvm("-o", "off", "-H", "twin", "-t", "10")
        assert (refused.returncode, refused.stdout) == (1, "Operation failed\n")
        assert listed(xvm, "twin") == ["on", "on"]
        assert xvm("-o", "off", "-u", "-H", TWIN_B).returncode == 0
        assert listed(xvm, "twin") == ["on", "off"]
        log = daemon.log()
    assert "name twin means 2 different VMs" in log
    assert "refused (address the VM by UUID)" in log


def domain_state(uri: str, name: str) -> int:
    conn = libvirt.open(uri)
    try:
        return int(conn.lookupByName(name).state()[0])
    finally:
        conn.close()


@pytest.mark.timeout(180)
def test_an_off_while_libvirtd_is_stopped_fails_at_the_deadline_and_never_runs_late(
    ns, key_file, tmp_path, xvm, private_libvirtd
) -> None:
    """The issue's case: libvirtd SIGSTOPped, ``fence_xvm -o off`` times out, and when
    libvirtd resumes the VM is destroyed anyway ("success in 10056 ms"). Now the daemon
    answers FAIL at its 3 s deadline; the first off (stuck in a lookup) checks the deadline
    before destroying and stops there; a second off, waiting behind it for the same VM, is
    dropped without starting. When libvirtd resumes, the VM still runs."""
    uri = private_libvirtd.test_uri
    conf = config(tmp_path / "fence_virt.conf", key_file, [uri], daemon='\tdeadline = "3";\n')
    with running_fence_virtd(ns, tmp_path / "fvd", conf, debug=1) as daemon:
        assert xvm("-o", "status", "-H", "test").returncode == 0  # connected, warm
        private_libvirtd.pause()
        try:
            for attempt in ("first", "second"):
                started = time.monotonic()
                failed = xvm("-o", "off", "-H", "test", "-t", "20")
                took = time.monotonic() - started
                assert (failed.returncode, failed.stdout) == (1, "Operation failed\n"), attempt
                assert 3 <= took < 15, f"{attempt} off answered after {took:.1f} s"
        finally:
            private_libvirtd.resume()
        daemon.wait_for_log("answered FAIL at its deadline, ended", timeout=30)
        time.sleep(1)  # room for a late destroy, were there one
        assert domain_state(uri, "test") == libvirt.VIR_DOMAIN_RUNNING
        status = xvm("-o", "status", "-H", "test")
        assert (status.returncode, status.stdout) == (0, "Status: ON\n")
        assert xvm("-o", "off", "-H", "test").returncode == 0  # serving normally again
        log = daemon.log()
    assert "off test failed: off test still running at its deadline" in log
    assert "off test failed: dropped, never started: an earlier operation on the same VM" in log
    assert "the request's deadline passed before destroying VM test" in log
    assert log.count("INFO: destroying VM test") == 1  # the last off only


def test_the_static_map_guards_off_on_reboot_and_status(ns, key_file, tmp_path, xvm) -> None:
    """Our fence_xvm on loopback may fence ``mapped`` only: every operation on ``other`` is
    refused (exit 3) and changes nothing, whatever state the VM is in; on ``mapped`` each is
    carried out. Dropping any operation from the map's checks fails here."""
    uri = node(
        tmp_path / "node.xml",
        ("mapped", "5a7e0000-0000-4000-8000-0000000000a1", None),
        ("other", "5a7e0000-0000-4000-8000-0000000000b1", None),
        ("other-off", "5a7e0000-0000-4000-8000-0000000000b2", 5),
    )
    conf = config(tmp_path / "fence_virt.conf", key_file, [uri])
    with conf.open("a") as out:
        out.write('groups {\n\tgroup {\n\t\tip = "127.0.0.1";\n\t\tuuid = "mapped";\n\t}\n}\n')
    denied = (3, "Permission denied\n")
    with running_fence_virtd(ns, tmp_path / "fvd", conf, debug=1) as daemon:
        for operation, vm in [
            ("off", "other"),
            ("reboot", "other"),
            ("status", "other"),
            ("on", "other-off"),
            ("reboot", "other-off"),
        ]:
            done = xvm("-o", operation, "-H", vm, "-t", "10")
            assert (done.returncode, done.stdout) == denied, (operation, vm)
        for operation, answer in [
            ("status", (0, "Status: ON\n")),
            ("off", (0, "")),
            ("on", (0, "")),
            ("reboot", (0, "")),
        ]:
            done = xvm("-o", operation, "-H", "mapped", "-t", "10")
            assert (done.returncode, done.stdout) == answer, operation
        log = daemon.log()
    for operation in ("off", "reboot", "status"):
        assert f"{operation} other for 127.0.0.1 (listener multicast): denied by the static" in log
    assert "on other-off for 127.0.0.1 (listener multicast): denied by the static map" in log
    assert "destroying VM other" not in log
    assert "starting VM other" not in log
    assert log.count("INFO: destroying VM mapped") == 2  # off, reboot
    assert log.count("INFO: starting VM mapped") == 2  # on, reboot
