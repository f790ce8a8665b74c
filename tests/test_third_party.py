"""A third-party backend needs nothing but pip: tests/third_party/fence-virt-backend-example,
installed with plain ``pip install`` from its own folder into a fresh venv beside
fence-virt-core (and the multicast listener that carries fence_xvm's requests; no other
backend, nothing of the development workspace), is listed by ``fence_virtd --list-plugins``,
passes the fence_virt.testing contract suite run by that venv's pytest, and serves a real
fence request from the C ``fence_xvm`` inside a network namespace.

The venv is a stdlib ``python3 -m venv`` with its own pip; pip fetches core's dependencies
(pluggy, stevedore, click, pytest) from the package index, as a third party's would.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.plugins import repo_root
from fence_virt_testinfra.processes import Daemon

EXAMPLE = repo_root() / "tests" / "third_party" / "fence-virt-backend-example"


def clean_env() -> dict[str, str]:
    """The environment without anything pointing into the development venv."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return env


def make_venv(where: Path) -> Path:
    """A fresh stdlib venv (with pip); returns its bin/ directory."""
    subprocess.run(["python3", "-m", "venv", str(where)], check=True, timeout=300)
    return where / "bin"


def pip_install(bin_dir: Path, *requirements: str) -> None:
    done = subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", *requirements],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """core[testing] + the multicast listener from the repo, the example from its folder."""
    bin_dir = make_venv(tmp_path_factory.mktemp("third-party") / "venv")
    root = repo_root()
    pip_install(
        bin_dir,
        f"{root / 'fence-virt-core'}[testing]",
        str(root / "fence-virt-listener-multicast"),
    )
    pip_install(bin_dir, str(EXAMPLE))
    return bin_dir


def write_vms(path: Path, vms: dict[str, bool]) -> Path:
    """The example's state file, written here by hand as an administrator would (shape:
    fence_virt_backend_example/state.py)."""
    table = {
        name: {"uuid": f"0000000{n}-0000-4000-8000-000000000000", "running": on, "boots": 1}
        for n, (name, on) in enumerate(vms.items(), start=1)
    }
    path.write_text(json.dumps({"vms": table}))
    return path


def config_text(key: Path, state: Path) -> str:
    return (
        'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "example";\n}\n'
        f'listeners {{\n\tmulticast {{\n\t\tkey_file = "{key}";\n\t\tinterface = "lo";\n\t}}\n}}\n'
        f'backends {{\n\texample {{\n\t\tstate_file = "{state}";\n\t}}\n}}\n'
    )


def test_listed_with_its_distribution_and_contract_suite_passes(
    venv: Path, tmp_path: Path, key_file: Path
) -> None:
    state = write_vms(tmp_path / "vms.json", {"vm1": True})
    config = tmp_path / "fence_virt.conf"
    config.write_text(config_text(key_file, state))
    listed = subprocess.run(
        [str(venv / "fence_virtd"), "--list-plugins", "--json", "-f", str(config)],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    assert set(rows) == {("listener", "multicast"), ("backend", "example")}
    example = rows[("backend", "example")]
    assert example["distribution"] == "fence-virt-backend-example"
    assert example["target"] == "fence_virt_backend_example.plugin:ExampleBackendPlugin"
    assert (example["loads"], example["usable"]) == (True, True)
    assert example["reason"] == f"state file {state}"

    table = subprocess.run(
        [str(venv / "fence_virtd"), "--list-plugins", "-f", str(config)],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    assert "fence-virt-backend-example" in table

    suite = subprocess.run(
        [str(venv / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout + suite.stderr
    assert "TestExampleBackendContract" not in suite.stdout, "no contract test may fail"
    summary = suite.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert " failed" not in summary
    assert " skipped" not in summary
    # the suite really ran from the venv's installed copy, not the source tree
    assert int(summary.split()[0]) >= 13, summary


@pytest.mark.netns
@pytest.mark.c_suite
def test_serves_the_c_fence_xvm_in_a_namespace(
    venv: Path,
    tmp_path: Path,
    ns: NetNS,
    key_file: Path,
    fence_xvm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    state = write_vms(tmp_path / "vms.json", {"vm1": True, "vm2": True})
    config = tmp_path / "fence_virt.conf"
    config.write_text(config_text(key_file, state))
    config.chmod(0o600)
    argv = [str(venv / "fence_virtd"), "-F", "-d", "1", "-f", str(config)]
    daemon = Daemon(ns.argv(*argv, "-p", str(tmp_path / "pid")), tmp_path / "log", clean_env())
    try:
        daemon.wait_for_log("fence_virtd started", 30)
        assert "backend: example from fence-virt-backend-example 0.1.0" in daemon.log()
        listing = fence_xvm(ns, key_file, "-o", "list")
        assert listing.returncode == 0, listing.stdout + listing.stderr
        assert [line.split()[::2] for line in listing.stdout.splitlines()] == [
            ["vm1", "on"],
            ["vm2", "on"],
        ]
        off = fence_xvm(ns, key_file, "-o", "off", "-H", "vm1")
        assert off.returncode == 0, off.stdout + off.stderr
        vms = json.loads(state.read_text())["vms"]
        assert (vms["vm1"]["running"], vms["vm2"]["running"]) == (False, True)
        status = fence_xvm(ns, key_file, "-o", "status", "-H", "vm1")
        assert (status.returncode, status.stdout) == (2, "Status: OFF\n")
        unknown = fence_xvm(ns, key_file, "-o", "off", "-H", "nosuch")
        assert unknown.returncode == 1
    finally:
        assert daemon.stop() == 0, daemon.log()


def run_generated_tests(bin_dir: Path, folder: Path) -> str:
    """The generated distribution's own tests, by the venv's pytest; the summary line."""
    suite = subprocess.run(
        [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout + suite.stderr
    return suite.stdout.strip().splitlines()[-1]


def test_generated_plugins_install_and_pass_their_contract_tests(tmp_path: Path) -> None:
    """``fence_virtd --new-plugin`` from a venv holding core alone (so the templates ship in
    core's wheel), each skeleton pip-installed beside it: listed, and its tests green."""
    bin_dir = make_venv(tmp_path / "venv")
    pip_install(bin_dir, f"{repo_root() / 'fence-virt-core'}[testing]")
    work = tmp_path / "work"
    work.mkdir()
    for kind, name in (("backend", "my_cloud"), ("listener", "pipe")):
        subprocess.run(
            [str(bin_dir / "fence_virtd"), "--new-plugin", kind, name, "--into", str(work)],
            check=True,
            env=clean_env(),
            capture_output=True,
        )
    backend = work / "fence-virt-backend-my-cloud"
    listener = work / "fence-virt-listener-pipe"
    pip_install(bin_dir, str(backend), str(listener))

    rows = json.loads(
        subprocess.run(
            [str(bin_dir / "fence_virtd"), "--list-plugins", "--json", "--default-config"],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout
    )
    assert {(r["kind"], r["name"], r["distribution"], r["loads"]) for r in rows} == {
        ("backend", "my_cloud", "fence-virt-backend-my-cloud", True),
        ("listener", "pipe", "fence-virt-listener-pipe", True),
    }
    backend_summary = run_generated_tests(bin_dir, backend)
    listener_summary = run_generated_tests(bin_dir, listener)
    for summary in (backend_summary, listener_summary):
        assert " failed" not in summary
        assert " skipped" not in summary
    assert int(backend_summary.split()[0]) >= 12, backend_summary
    assert int(listener_summary.split()[0]) >= 5, listener_summary


def test_man_pages_are_installed_with_core(venv: Path) -> None:
    """pip installs core's man pages (shared data) under the environment's share/man, where
    ``man`` finds them through MANPATH; rendered there as an administrator would read them."""
    man_root = venv.parent / "share" / "man"
    installed = sorted(str(p.relative_to(man_root)) for p in man_root.rglob("*.[58]"))
    assert installed == [
        "man5/fence_virt.conf.5",
        "man8/fence_virt.8",
        "man8/fence_virtd.8",
        "man8/fence_xvm.8",
    ]
    env = {k: v for k, v in clean_env().items() if k != "MAN_KEEP_FORMATTING"}
    env |= {"MANPATH": str(man_root), "MANWIDTH": "80", "LC_ALL": "C.UTF-8"}
    shown = subprocess.run(
        ["man", "5", "fence_virt.conf"], capture_output=True, text=True, check=False, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "listeners/multicast" in shown.stdout
