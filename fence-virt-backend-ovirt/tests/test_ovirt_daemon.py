"""The ovirt backend inside a real ``fence_virtd -F`` (multicast listener), fencing VMs of the
fake engine for the C ``fence_xvm`` and ours.

Everything runs in a fresh network namespace holding only ``lo``: the fake engine's socket
is opened from a thread inside it (fence_virt_testinfra.setns), the daemon and both agents
are started there with ``ip netns exec``. The engine is a test double (no oVirt engine can
run here; fence_virt_testinfra.ovirt_engine says what it models).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import run_in
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_VIRTD, FENCE_XVM, fence_virtd_argv, running_fence_virtd
from fence_virt_testinfra.ovirt_engine import FakeEngine, FakeVm
from fence_virt_testinfra.processes import Daemon
from fence_virt_testinfra.setns import in_netns
from fence_virt_testinfra.tls import Pki, throwaway_pki

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

USER = "fence@internal"
PASSWORD = "daemon-secret"  # noqa: S105 - the fake engine's test account


@dataclass
class Lab:
    ns: NetNS
    engine: FakeEngine
    pki: Pki
    key: Path
    tmp: Path

    def config(self, ca_file: Path | None = None) -> Path:
        password = self.tmp / "ovirt.pass"
        password.write_text(PASSWORD)
        password.chmod(0o600)
        path = self.tmp / "fence_virt.conf"
        path.write_text(
            'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "ovirt";\n}\n'
            f'listeners {{\n\tmulticast {{\n\t\tkey_file = "{self.key}";\n'
            '\t\tinterface = "lo";\n\t}\n}\n'
            f'backends {{\n\tovirt {{\n\t\turl = "{self.engine.url}";\n'
            f'\t\tusername = "{USER}";\n\t\tpassword_file = "{password}";\n'
            f'\t\tca_file = "{ca_file or self.pki.ca_file}";\n'
            '\t\ttimeout = "2";\n\t\tpower_timeout = "5";\n\t}\n}\n'
        )
        path.chmod(0o600)
        return path

    def restart_engine(self) -> None:
        in_netns(self.ns, lambda: self.engine.start(port=self.engine.port))


@pytest.fixture
def lab(ns: NetNS, tmp_path: Path, key_file: Path) -> Iterator[Lab]:
    pki = throwaway_pki(tmp_path / "pki", tag="engine")
    engine = FakeEngine(pki, {USER: PASSWORD})
    for name in ("vm1", "vm2", "Db1", "db1"):
        engine.add_vm(FakeVm(name, users={USER}, down_after=0.3, up_after=0.3))
    engine.add_vm(FakeVm("vm3", status="down", users={USER}))
    engine.add_vm(FakeVm("lost", status="unknown", users={USER}))
    engine.add_vm(FakeVm("slow", slow=10.0, users={USER}))
    engine.add_vm(FakeVm("not-mine"))
    in_netns(ns, engine.start)
    try:
        yield Lab(ns, engine, pki, key_file, tmp_path)
    finally:
        engine.stop()


@pytest.fixture
def daemon(lab: Lab) -> Iterator[Daemon]:
    with running_fence_virtd(lab.ns, lab.tmp / "fvd", lab.config(), debug=1) as running:
        yield running


def ours(lab: Lab, *args: str) -> tuple[int, str]:
    done = run_in(lab.ns, [FENCE_XVM, "-k", str(lab.key), *args])
    return done.returncode, done.stdout.decode()


def c_agent(fence_xvm, lab: Lab):
    def run(*args: str) -> tuple[int, str]:
        done = fence_xvm(lab.ns, lab.key, *args)
        return done.returncode, done.stdout

    return run


@pytest.mark.parametrize("agent", ["c", "ours"])
def test_agents_fence_vms_on_the_engine(lab, daemon, fence_xvm, agent):
    xvm = c_agent(fence_xvm, lab) if agent == "c" else (lambda *a: ours(lab, *a))
    engine = lab.engine
    code, listing = xvm("-o", "list")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in listing.splitlines()}
    assert sorted(rows) == ["Db1", "db1", "lost", "slow", "vm1", "vm2", "vm3"]  # not not-mine
    assert rows["vm1"] == [engine.vm("vm1").id, "on"]
    assert rows["vm3"][1] == "off"
    assert xvm("-o", "status", "-H", "vm1") == (0, "Status: ON\n")
    assert xvm("-o", "off", "-H", "vm1") == (0, "")
    assert engine.vm("vm1").status == "down"
    assert xvm("-o", "status", "-H", "vm1") == (2, "Status: OFF\n")
    assert xvm("-o", "on", "-H", "vm1") == (0, "")
    assert engine.vm("vm1").status == "up"
    boots = engine.vm("vm2").boots
    assert xvm("-o", "reboot", "-u", "-H", engine.vm("vm2").id) == (0, "")
    assert (engine.vm("vm2").status, engine.vm("vm2").boots) == ("up", boots + 1)
    assert xvm("-o", "off", "-H", "db1") == (0, "")
    assert (engine.vm("db1").status, engine.vm("Db1").status) == ("down", "up")
    assert xvm("-o", "monitor")[0] == 0
    for vm in ("lost", "nosuch", "DB1", "not-mine"):
        assert xvm("-o", "status", "-H", vm) == (1, "Operation failed\n"), vm
    assert xvm("-o", "off", "-H", "lost") == (1, "Operation failed\n")
    assert engine.vm("lost").status == "unknown"
    assert engine.vm("not-mine").actions == []
    log = daemon.log()
    assert "VM lost (" in log
    assert "the engine cannot vouch for its power state" in log


def test_token_expiry_is_invisible_to_the_agents(lab, daemon, fence_xvm):
    xvm = c_agent(fence_xvm, lab)
    assert xvm("-o", "status", "-H", "vm1") == (0, "Status: ON\n")
    lab.engine.expire_tokens()
    assert xvm("-o", "off", "-H", "vm1") == (0, "")
    assert lab.engine.tokens_issued == 2


def test_unreachable_or_slow_engine_fails_requests_and_the_daemon_lives(lab, daemon, fence_xvm):
    xvm = c_agent(fence_xvm, lab)
    slow = lab.engine.vm("slow").id
    assert xvm("-o", "status", "-u", "-H", slow) == (1, "Operation failed\n")
    assert "no answer within 2 s" in daemon.log() or "timed out" in daemon.log()
    lab.engine.stop()
    assert xvm("-o", "status", "-H", "vm1") == (1, "Operation failed\n")
    assert xvm("-o", "off", "-H", "vm2") == (1, "Operation failed\n")
    assert daemon.process.poll() is None
    assert "cannot reach engine" in daemon.log()
    lab.restart_engine()
    assert xvm("-o", "status", "-H", "vm1") == (0, "Status: ON\n")
    assert xvm("-o", "off", "-H", "vm2") == (0, "")
    assert lab.engine.vm("vm2").status == "down"


def test_wrong_ca_stops_the_daemon_with_a_clear_error(lab):
    other = throwaway_pki(lab.tmp / "other", tag="other")
    workdir = lab.tmp / "wrong"
    workdir.mkdir()
    argv = fence_virtd_argv(lab.config(ca_file=other.ca_file), workdir / "fvd.pid")
    done = subprocess.run(
        lab.ns.argv(*argv), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fence_virtd: backend ovirt failed to start: ")
    assert f"TLS certificate is not trusted by ca_file {other.ca_file}" in last
    assert "Traceback" not in done.stderr
    assert lab.engine.tokens_issued == 0


def test_list_plugins_shows_the_ovirt_backend(lab):
    argv = [FENCE_VIRTD, "--list-plugins", "--json", "-f", str(lab.config())]
    done = subprocess.run(
        lab.ns.argv(*argv), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(done.stdout)}
    row = rows[("backend", "ovirt")]
    assert row["distribution"] == "fence-virt-backend-ovirt"
    assert row["usable"], row
    assert row["reason"] == f"engine https://127.0.0.1:{lab.engine.port} answers over verified TLS"
