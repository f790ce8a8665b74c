"""``fence_virtd --check`` with the in-memory plugins: what core checks for every plugin.

The checks of the real multicast listener and libvirt backend (routes, keys, URIs) are in
the repository's ``tests/test_doctor.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from fence_virt import CheckContext, Finding
from fence_virt.daemon.doctor import _diagnose, run_check
from fence_virt.plugins import PluginEntry, PluginKind
from fence_virt_testinfra.ours import FENCE_VIRTD


def write_config(tmp_path: Path, extra: str = "", backend: str = "") -> Path:
    path = tmp_path / "fence_virt.conf"
    path.write_text(
        f"""fence_virtd {{ listener = "memory"; backend = "memory"; }}
listeners {{ memory {{ socket = "{tmp_path}/fv.sock"; }} }}
backends {{ memory {{ {backend or 'vm = "vm1"; vm = "vm2";'} }} }}
{extra}"""
    )
    path.chmod(0o600)
    return path


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FENCE_VIRTD, "--check", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_working_configuration_exits_0_and_lists_the_vms(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = check("-f", str(config))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"ok       config: {config} parses: listener memory, backend memory",
        f"ok       listener memory: memory listener on {tmp_path}/fv.sock "
        "(fence-virt-testplugins 0.0.1)",
        "ok       backend memory: memory (2 VMs) (fence-virt-testplugins 0.0.1)",
        "ok       backend memory: sees 2 VM(s): vm1, vm2",
        "no problems found",
    ]
    assert not (tmp_path / "fv.sock").exists()  # nothing was started


def test_a_static_map_entry_the_backend_does_not_list_is_a_problem(tmp_path: Path) -> None:
    groups = 'groups { group { name = "c1"; ip = "198.51.100.11"; uuid = "vm1"; uuid = "VM7"; } }'
    report = run_check(str(write_config(tmp_path, groups)), explicit=True)
    assert [line.render() for line in report.lines if line.finding.is_problem] == [
        "PROBLEM  listener memory: group c1 names VM 'vm7', which backend memory does not "
        "see: its guests can never fence it -> correct the uuid entry (a VM name or UUID the "
        "backend lists)"
    ]


def test_a_configuration_error_is_one_problem_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.conf"
    config.write_text('fence_virtd {\n    listener = "memory"\n}\n')
    config.chmod(0o600)
    result = check("-f", str(config))
    assert result.returncode == 1
    first, summary = result.stdout.splitlines()
    assert first.startswith(f"PROBLEM  config: {config}:2: expected ';'")
    assert first.endswith("-> correct the configuration where the message says")
    assert summary == "1 problem(s) found"


def test_a_backend_that_cannot_start_is_a_problem_and_listeners_are_still_checked(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, backend='vm = "vm1"; shutoff = "vm1";')
    report = run_check(str(config), explicit=True)
    rendered = [line.render() for line in report.lines]
    assert any(line.startswith("ok       listener memory:") for line in rendered)
    assert report.problems == 1
    assert "vm1 cannot be both vm and shutoff" in rendered[-1]


def test_a_missing_plugin_is_a_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path).read_text().replace('backend = "memory"', 'backend = "nope"')
    path = tmp_path / "other.conf"
    path.write_text(config)
    path.chmod(0o600)
    report = run_check(str(path), explicit=True)
    [line] = report.lines
    assert line.finding.is_problem
    assert "nope" in line.finding.text
    assert line.finding.fix is not None
    assert "fence_virtd --list-plugins" in line.finding.fix


def test_key_of_guest_needs_check(tmp_path: Path) -> None:
    result = subprocess.run(
        [FENCE_VIRTD, "--key-of-guest", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--key-of-guest needs --check" in result.stderr


def test_an_unreadable_guest_key_is_refused(tmp_path: Path) -> None:
    result = check("-f", str(write_config(tmp_path)), "--key-of-guest", str(tmp_path / "none"))
    assert result.returncode == 1
    assert f"guest key file {tmp_path}/none: No such file or directory" in result.stderr


ENTRY = PluginEntry(PluginKind.LISTENER, "odd", "odd:Odd", "odd-dist", "1.0")


class _Raises:
    """Test double: a listener object whose own checks crash (no real plugin does)."""

    def diagnose(self, context: CheckContext) -> list[Finding]:
        raise RuntimeError("boom")


class _Garbage:
    """Test double: a listener object whose checks return the wrong type."""

    async def diagnose(self, context: CheckContext) -> object:
        return ["fine"]


@pytest.mark.parametrize(
    ("thing", "expected"),
    [
        (_Raises(), "the checks of fence_virt.listeners:odd failed: RuntimeError: boom"),
        (_Garbage(), "diagnose() of fence_virt.listeners:odd returned ['fine']"),
    ],
)
def test_a_broken_diagnose_is_one_problem_naming_the_plugin(thing: object, expected: str) -> None:
    [finding] = asyncio.run(_diagnose(thing, ENTRY, CheckContext()))
    assert finding.is_problem
    assert finding.text.startswith(expected)
    assert finding.fix == "report this to the authors of odd-dist"


def test_an_object_without_diagnose_has_no_findings() -> None:
    assert asyncio.run(_diagnose(object(), ENTRY, CheckContext())) == []
