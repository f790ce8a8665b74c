"""Three hosts, each a real corosync in its own namespace (198.51.100.1-3 on a bridge, a
private /run each), each with a fence_virtd (cpg backend) holding different VMs:
node 1 vmA, node 2 vmB and vmM, node 3 vmC. Agents ask node 1's or node 2's daemon over
multicast inside that node's namespace; the request travels through the CPG group.

Run alone with ``pytest -m corosync3``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import have_c_suite, write_key
from fence_virt_testinfra.corosync import COROSYNC_TOOLS, corosync_cluster
from fence_virt_testinfra.cpg_hosts import Host, write_check
from fence_virt_testinfra.processes import wait_until
from fence_virt_testinfra.tools import skip_unless_installed, skip_unless_netns, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.c_suite, pytest.mark.corosync3]

LAYOUT = {1: ("vmA",), 2: ("vmB", "vmM"), 3: ("vmC",)}


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[Host]]:
    """Nodes 1-3 with corosync running and no fence_virtd yet; every daemon stopped after."""
    skip_unless_netns()
    skip_unless_installed(*COROSYNC_TOOLS)
    if not have_c_suite():
        unavailable("the C fence-virt suite is not installed")
    key = write_key(tmp_path / "fence_xvm.key")
    check = write_check(tmp_path)
    with corosync_cluster(3) as nodes:
        hosts = [Host(node, key, check) for node in nodes]
        try:
            yield hosts
        finally:
            for host in hosts:
                host.stop()


def start_all_ours(hosts: list[Host]) -> None:
    for host in hosts:
        host.start_ours(*LAYOUT[host.nodeid])
    wait_for_group(hosts[0], 3)


def wait_for_group(host: Host, count: int) -> None:
    wait_until(
        lambda: len(host.node.group_members("fence-agents")) == count,
        20,
        f"{count} members in fence-agents",
    )


def test_a_request_at_node_1_for_a_vm_on_node_3_is_carried_out_on_node_3(hosts):
    start_all_ours(hosts)
    one, two, three = hosts
    assert one.agent("C", "-o", "status", "-H", "vmC")[0] == 0
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    assert "off vmC: here (state 1); carrying it out" in three.log()
    assert "destroying VM vmC" in three.log()
    assert "off vmC: remote on host 3" in one.log()
    # node 3's own libvirt says so (its list shows local VMs only), and every node agrees
    assert three.agent("ours", "-o", "list")[1].split()[:3] == [
        "vmC",
        "cccccccc-0000-0000-0000-000000000003",
        "off",
    ]
    assert two.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    assert one.agent("ours", "-o", "on", "-H", "vmC")[0] == 0
    assert three.agent("C", "-o", "status", "-H", "vmC")[0] == 0
    # a VM no member ever reported fails (C's highest node answers success)
    assert one.agent("C", "-o", "off", "-H", "nosuch")[0] == 1
    assert "off nosuch: no member has reported this VM: FAIL" in three.log()


def test_after_migration_the_new_owner_acts(hosts):
    start_all_ours(hosts)
    one, two, three = hosts
    assert one.agent("ours", "-o", "status", "-H", "vmM")[0] == 0
    assert "status vmM: here" in two.log()
    # "migrate" vmM: defined and running on node 3, then undefined on node 2
    three.start_ours("vmC", "vmM")
    two.start_ours("vmB")
    wait_for_group(one, 3)
    one.wait_for_log("VM vmM (dddddddd-0000-0000-0000-000000000004) moved from node 2 to node 3")
    assert one.agent("C", "-o", "off", "-H", "vmM")[0] == 0
    assert "off vmM: here (state 1); carrying it out" in three.log()
    assert "destroying VM vmM" in three.log()
    assert "off vmM: remote on host 3" in two.log()
    assert "destroying VM vmM" not in two.log()
    assert two.agent("ours", "-o", "status", "-H", "vmM")[0] == 2


def test_a_dead_hosts_vms_are_fenced_only_once_it_is_recorded_fenced(hosts, tmp_path):
    start_all_ours(hosts)
    one, two, three = hosts
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 0
    three.node.kill()  # node 3 dies: its corosync is gone, its VMs may still run
    one.wait_for_log("node 3 left fence-agents holding vmC")
    two.wait_for_log("node 3 left fence-agents holding vmC")
    # not yet recorded as fenced: failure, for off, reboot and status alike
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 1
    assert one.agent("ours", "-o", "reboot", "-H", "vmC")[0] == 1
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 1
    assert "on node 3, which left but is not known to be fenced" in two.log()
    # the host cluster records node 3 as fenced
    (tmp_path / "fenced-3").write_text("")
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    assert one.agent("ours", "-o", "on", "-H", "vmC")[0] == 1
    assert "on node 3, which is fenced" in two.log()
    # VMs of the living are untouched by the rule, unknown VMs still fail
    assert one.agent("ours", "-o", "status", "-H", "vmB")[0] == 0
    assert one.agent("ours", "-o", "off", "-H", "nosuch")[0] == 1
    # node 2 dies too: node 1 alone has no quorum, so nothing is reported fenced any more
    two.node.kill()
    one.wait_for_log("node 2 left fence-agents holding vmB, vmM")
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 1
    assert one.agent("C", "-o", "off", "-H", "vmB")[0] == 1
    assert "(this partition has no quorum): FAIL" in one.log()


def test_c_and_python_daemons_interoperate(hosts):
    """Node 1 runs the C fence_virtd (its cpg backend), nodes 2 and 3 ours."""
    one, two, three = hosts
    two.start_ours(*LAYOUT[2])
    three.start_ours(*LAYOUT[3])
    one.start_c(*LAYOUT[1])
    wait_for_group(two, 3)
    # the C daemon asks; ours (node 3) carries it out and replies
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    assert "off vmC: here (state 1); carrying it out" in three.log()
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    # ours asks; the C daemon (node 1) carries it out and replies
    assert two.agent("C", "-o", "off", "-H", "vmA")[0] == 0
    assert two.agent("ours", "-o", "status", "-H", "vmA")[0] == 2
    assert "remote on host 1" in two.log()
    assert one.agent("C", "-o", "status", "-H", "vmA")[0] == 2
