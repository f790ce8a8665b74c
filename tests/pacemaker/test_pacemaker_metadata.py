"""Pacemaker reads our agents' metadata as hacluster from a production install (issue 21
C8): ``stonith_admin --metadata`` and ``crm_resource --show-metadata``, run as hacluster,
give the same answer for our agents (``scripts/install-agents``: the system interpreter, a
prefix every user can read, links under the names Pacemaker looks for) as for the C ones.
No canned metadata anywhere: the sandbox's ``/usr/sbin`` holds only links to the install.

Neither command needs a running cluster: both run ``/usr/sbin/AGENT -o metadata`` (as the
user who calls them). Every run is in a sandbox (network namespace with only ``lo``, private
mount namespace); the host's ``/usr/sbin`` keeps the C agents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import have_c_suite
from fence_virt_testinfra.production import ProductionInstall
from fence_virt_testinfra.sandbox import Sandbox, sandbox
from fence_virt_testinfra.tools import skip_unless_installed, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

AGENTS = ["fence_xvm", "fence_virt"]


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    skip_unless_installed("stonith_admin", "crm_resource", "runuser")
    if not have_c_suite():
        unavailable("the C fence-virt suite (fence-virt, fence-virtd) is not installed")
    with sandbox("pmeta") as running:
        yield running


def as_hacluster(box: Sandbox, *command: str) -> tuple[int, str, str]:
    done = box.run("runuser", "-u", "hacluster", "--", *command, check=False)
    return done.returncode, done.stdout, done.stderr


def metadata_paths(box: Sandbox, agent: str) -> list[tuple[int, str, str]]:
    return [
        as_hacluster(box, "stonith_admin", "--metadata", f"--agent={agent}"),
        as_hacluster(box, "crm_resource", "--show-metadata", f"stonith:{agent}"),
    ]


@pytest.mark.parametrize("agent", AGENTS)
def test_hacluster_reads_our_installed_agents_metadata_as_cs(
    box: Sandbox, installed: ProductionInstall, agent: str
) -> None:
    theirs = metadata_paths(box, agent)
    box.install_agent(agent, installed.agent(agent))
    try:
        # the sandbox runs our install under the agent's name, and hacluster may run it
        assert box.run("readlink", "-f", f"/usr/sbin/{agent}").stdout.strip() == str(
            installed.prefix / "bin" / agent
        )
        mine = metadata_paths(box, agent)
        direct = as_hacluster(box, f"/usr/sbin/{agent}", "-o", "metadata")
    finally:
        box.remove_agents()
    for (code, out, err), path in zip(mine, ("stonith_admin", "crm_resource"), strict=True):
        assert code == 0, (path, out, err)
        assert f'<resource-agent name="{agent}"' in out, (path, out)
        assert '<parameter name="port"' in out, (path, out)
    assert mine == theirs
    assert direct[0] == 0
    assert direct[1].startswith('<?xml version="1.0" ?>\n<resource-agent name="')


def test_an_agent_hacluster_cannot_run_is_refused(box: Sandbox, tmp_path: Path) -> None:
    """What the production install is for: an agent under a directory only root may enter
    (the development venv's interpreter lies under ``/root``) is refused, and nothing
    stands in for its metadata."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    program = private / "fence_xvm"
    program.write_text("#!/bin/sh\necho '<?xml version=\"1.0\" ?>'\n")
    program.chmod(0o755)
    assert box.run(str(program), "-o", "metadata").returncode == 0  # root may run it
    with pytest.raises(RuntimeError, match="hacluster cannot run"):
        box.install_agent("fence_xvm", program)
    box.remove_agents()
    assert box.run("readlink", "/usr/sbin/fence_xvm").stdout.strip() == "fence_virt"
