"""``stonith_admin --validate`` on the C agents and ours (issue 21 D13): where our agents are
stricter than C, Pacemaker's validation answers differently -- C's says valid for a value
it then silently changes (a wrapped number, a group of the other family, a host name it
never connects to), ours names the value.

``stonith_admin --validate`` needs no running cluster: it runs ``/usr/sbin/AGENT`` with
``action=validate-all`` and the ``--option`` values on stdin. Every run is in a sandbox (a
network namespace with only ``lo`` and a private mount namespace); our agent replaces the C
one there only (:meth:`~fence_virt_testinfra.sandbox.Sandbox.install_agent`, links to the
production install of fixture ``installed``). ``pcs
--agent-validation`` runs the same validate-all (pcs is not installed here, so not tested).
validate-all sends nothing; the C ``fence_virt`` always gets ``ipaddr``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import have_c_suite, write_key
from fence_virt_testinfra.production import ProductionInstall
from fence_virt_testinfra.sandbox import Sandbox, sandbox
from fence_virt_testinfra.tools import skip_unless_installed, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

#: (agent, --option values, the line our agent prints) -- C's validation succeeds for each
ROWS = [
    ("fence_xvm", ["timeout=4294967297"], "Invalid timeout: '4294967297'"),
    ("fence_xvm", ["ipport=4294968525"], "Invalid port: '4294968525'"),
    ("fence_xvm", ["ip_family=ipv4", "multicast_address=ff05::3:1"],
     "Invalid multicast address: 'ff05::3:1'"),
    ("fence_virt", ["ipaddr=127.0.0.1", "timeout=4294967297"], "Invalid timeout: '4294967297'"),
    ("fence_virt", ["ipaddr=host.example"],
     "Invalid IP address: 'host.example' (an IPv4 or IPv6 address, not a name)"),
]  # fmt: skip


#: options both agents find valid (the C fence_virt always gets an address)
BASELINE = {"fence_xvm": [], "fence_virt": ["ipaddr=127.0.0.1"]}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    skip_unless_installed("stonith_admin")
    if not have_c_suite():
        unavailable("the C fence-virt suite (fence-virt, fence-virtd) is not installed")
    with sandbox("pval") as running:
        yield running


@pytest.fixture(scope="module")
def key(box: Sandbox) -> Path:
    return write_key(box.workdir / "fence_xvm.key")


def validate(box: Sandbox, agent: str, key: Path, values: list[str]) -> tuple[int, str]:
    options = [f"--option={value}" for value in ["port=vm1", f"key_file={key}", *values]]
    done = box.run("stonith_admin", "--validate", f"--agent={agent}", *options, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("agent", "values", "line"), ROWS, ids=lambda v: str(v)[:30])
def test_pacemaker_validation_answers_differently(
    box: Sandbox,
    installed: ProductionInstall,
    key: Path,
    agent: str,
    values: list[str],
    line: str,
) -> None:
    program = installed.agent(agent)
    c_code, c_out = validate(box, agent, key, values)
    valid = validate(box, agent, key, BASELINE[agent])
    box.install_agent(agent, program)
    try:
        our_code, our_out = validate(box, agent, key, values)
        our_valid = validate(box, agent, key, BASELINE[agent])
    finally:
        box.remove_agents()
    assert (c_code, c_out.strip()) == (0, f"Validation of {agent} succeeded"), c_out
    assert valid[0] == 0, valid
    assert our_code != 0, our_out
    assert f"Validation of {agent} failed" in our_out
    assert line in our_out.splitlines(), our_out
    assert our_valid[0] == 0, our_valid
