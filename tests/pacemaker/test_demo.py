"""The README's main command (``scripts/demo``, which runs ``scripts/demo.py``) fences ``test``
end to end.

The demo creates ``/etc/cluster/fence_xvm.key`` when it is missing. So that the test never
changes the host, each run gets a private mount namespace with an overlay over ``/etc``
(writes land in the test's directory) in which the key is first removed, or planted.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import have_c_suite
from fence_virt_testinfra.ours import missing_daemon_plugins, our_agent
from fence_virt_testinfra.plugins import repo_root
from fence_virt_testinfra.tools import unavailable

pytestmark = pytest.mark.netns

DEMO = repo_root() / "scripts" / "demo.py"


# a script, not a package: its constants are read by running it (main() runs only as __main__)
_demo = runpy.run_path(str(DEMO), run_name="fence_virt_demo")
DOMAIN, KEY_FILE, STEPS = _demo["DOMAIN"], _demo["KEY_FILE"], _demo["STEPS"]


def run_demo(
    tmp_path: Path, *args: str, plant_key: bool = False
) -> subprocess.CompletedProcess[str]:
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    plant = f"mkdir -p {KEY_FILE.parent} && head -c 4096 /dev/urandom > {KEY_FILE}"
    prepare = f"{plant} && chmod 600 {KEY_FILE}" if plant_key else f"rm -f {KEY_FILE}"
    demo = " ".join([sys.executable, str(DEMO), *args])
    script = (
        f"mount -t overlay fvt-demo-etc -o lowerdir=/etc,upperdir={upper},workdir={work} /etc"
        f" && {prepare} && exec {demo}"
    )
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def assert_fenced(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for number, (operation, _) in enumerate(STEPS, 1):
        assert f"[{number}/{len(STEPS)}] {operation} {DOMAIN}" in out
    steps = out.split("\n[")[1:]
    assert [s.count("): as expected") for s in steps] == [1] * len(STEPS), out
    assert "| Status: OFF" in steps[2]
    assert "| Status: ON" in steps[6]
    assert out.rstrip().endswith("result: every step as expected")


def host_key_state() -> bytes | None:
    return KEY_FILE.read_bytes() if KEY_FILE.exists() else None


def test_demo_fences_with_our_stack(tmp_path: Path) -> None:
    if our_agent() is None or missing_daemon_plugins():
        unavailable(f"our stack is incomplete: {missing_daemon_plugins() or 'no fence_xvm'}")
    before = host_key_state()
    result = run_demo(tmp_path)
    assert_fenced(result)
    assert "fence-virt (Python)" in result.stdout
    assert f"key: created {KEY_FILE}" in result.stdout
    assert "--default-config" in result.stdout
    assert host_key_state() == before


def test_demo_keeps_an_existing_key(tmp_path: Path) -> None:
    if our_agent() is None or missing_daemon_plugins():
        unavailable("our stack is incomplete")
    result = run_demo(tmp_path, plant_key=True)
    assert_fenced(result)
    assert f"key: using the existing {KEY_FILE}" in result.stdout


@pytest.mark.c_suite
def test_demo_with_c_stand_ins(tmp_path: Path) -> None:
    if not have_c_suite():
        unavailable("the C fence-virt suite is not installed")
    result = run_demo(tmp_path, "--c-suite")
    assert_fenced(result)
    assert "C suite stand-ins (forced by --c-suite)" in result.stdout
    assert "/usr/sbin/fence_xvm -o off -H test" in result.stdout
