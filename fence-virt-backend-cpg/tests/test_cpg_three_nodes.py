"""Three hosts, each a real corosync in its own namespace (198.51.100.1-3 on a bridge, a
private /run each), each with a fence_virtd (cpg backend) holding different VMs:
node 1 vmA, node 2 vmB and vmM, node 3 vmC. Agents ask node 1's or node 2's daemon over
multicast inside that node's namespace; the request travels through the CPG group.

Most tests give each daemon a libvirt test-driver file. ``shared_libvirt`` gives each node a
hand-started libvirtd instead, which the test reaches too: VMs are then moved and started
while the daemons run, and the daemons learn it from libvirt's lifecycle events.

Run alone with ``pytest -m corosync3``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from fence_virt_testinfra.c_suite import have_c_suite, write_key
from fence_virt_testinfra.corosync import COROSYNC_TOOLS, corosync_cluster
from fence_virt_testinfra.cpg_hosts import UUIDS, Host, domain_xml, vm_uuid, write_check
from fence_virt_testinfra.libvirtd import LIBVIRTD_TOOLS, running_libvirtd
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


@pytest.fixture
def shared_libvirt(hosts: list[Host]) -> Iterator[list[libvirt.virConnect]]:
    """A libvirtd per node holding that node's VMs of LAYOUT, running; each host's daemon
    uses it (``test+unix:///default``, refresh_interval 600 s: only lifecycle events tell
    the group of a change). Yields the test's own connection to each node's libvirtd (the
    test driver's state lives while one stays open)."""
    skip_unless_installed(*LIBVIRTD_TOOLS)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    with contextlib.ExitStack() as stack:
        # daemons stop before the libvirtds they use
        stack.callback(lambda: [host.stop() for host in hosts])
        connections = []
        for host in hosts:
            daemon = stack.enter_context(running_libvirtd(host.node.workdir / "lv"))
            connection = libvirt.open(daemon.test_uri)
            stack.callback(connection.close)
            default = connection.lookupByName("test")  # the test driver's own; not ours
            default.destroy()
            default.undefine()
            for name in LAYOUT[host.nodeid]:
                connection.defineXML(domain_xml(name)).create()
            host.libvirt_uri = daemon.test_uri
            host.refresh_interval = 600
            connections.append(connection)
        yield connections


def start_all_ours(hosts: list[Host]) -> None:
    for host in hosts:
        host.start_ours(*(() if host.libvirt_uri else LAYOUT[host.nodeid]))
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
    three.wait_for_log("off vmC: here (state 1); carrying it out", 10)
    three.wait_for_log("destroying VM vmC", 10)
    one.wait_for_log("off vmC: remote on host 3", 10)
    # one request id, NODE:SEQNO, follows the request through every host's log
    found = re.search(r"request (1:\d+): off vmC for ", one.log())
    assert found is not None
    rid = found[1]
    three.wait_for_log(f"request {rid}: off vmC: here (state 1); carrying it out", 10)
    three.wait_for_log(f"request {rid}: replying SUCCESS to node 1", 10)
    # node 2 decides beside the owner, off the answer's path: its line may come just after
    two.wait_for_log(f"request {rid}: off vmC: remote on host 3", 10)
    one.wait_for_log(f"request {rid}: node 3 replied 0", 10)
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
    three.wait_for_log("off nosuch: no member has reported this VM: FAIL", 10)

    # node 3's daemon hangs (stopped, still in the group): the request fails after
    # request_timeout = 8 s (C's requester waits forever)
    assert three.daemon is not None
    os.kill(three.daemon.pid, signal.SIGSTOP)
    try:
        assert one.agent("ours", "-o", "off", "-H", "vmC")[0] == 1
    finally:
        os.kill(three.daemon.pid, signal.SIGCONT)
    one.wait_for_log("off vmC: no member answered within 8 s", 10)


def test_after_a_move_from_node_2_to_node_3_node_3_acts(hosts, shared_libvirt):
    """vmM leaves node 2 (destroyed, undefined) and is defined and started on node 3 while
    every daemon keeps running: the group learns it from node 3's lifecycle events (the
    periodic refresh is 600 s away), and a request at node 1 is carried out on node 3."""
    start_all_ours(hosts)
    one, two, three = hosts
    _, libvirt_2, libvirt_3 = shared_libvirt
    assert one.agent("ours", "-o", "status", "-H", "vmM")[0] == 0
    two.wait_for_log("status vmM: here (state 1); carrying it out", 10)
    vm = libvirt_2.lookupByName("vmM")
    vm.destroy()
    vm.undefine()
    libvirt_3.defineXML(domain_xml("vmM")).create()
    one.wait_for_log(f"VM vmM ({UUIDS['vmM']}) moved from node 2 to node 3", 10)
    two.wait_for_log(f"VM vmM ({UUIDS['vmM']}) is no longer on this host", 10)
    two.wait_for_log(f"node 3 holds VM vmM ({UUIDS['vmM']}), state 1", 10)
    assert one.agent("C", "-o", "off", "-H", "vmM")[0] == 0
    three.wait_for_log("off vmM: here (state 1); carrying it out", 10)
    one.wait_for_log("off vmM: remote on host 3", 10)
    two.wait_for_log("off vmM: remote on host 3", 10)  # beside the answer's path, as above
    assert libvirt_3.lookupByName("vmM").state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert [d.name() for d in libvirt_2.listAllDomains()] == ["vmB"]
    status, out = one.agent("ours", "-o", "on", "-H", "vmM")
    assert status == 0, (out, one.log()[-4000:], three.log()[-4000:])
    assert libvirt_3.lookupByName("vmM").state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_a_vm_started_on_a_running_node_is_known_to_the_others_at_once(hosts, shared_libvirt):
    """A VM defined and started on node 3 after its daemon joined is published on libvirt's
    lifecycle events: nodes 1 and 2 know its owner within seconds (refresh_interval 600 s),
    so node 1 routes a request for it to node 3 rather than calling it unknown."""
    start_all_ours(hosts)
    one, two, three = hosts
    libvirt_3 = shared_libvirt[2]
    one.wait_for_log(f"node 3 holds VM vmC ({UUIDS['vmC']}), state 1")
    libvirt_3.defineXML(domain_xml("vmN")).create()
    known = f"node 3 holds VM vmN ({vm_uuid('vmN')}), state 1"
    one.wait_for_log(known, 10)
    two.wait_for_log(known, 10)
    three.wait_for_log("lifecycle event", 10)
    assert one.agent("ours", "-o", "reboot", "-H", "vmN")[0] == 0
    one.wait_for_log("reboot vmN: remote on host 3 (state 1); that node answers", 10)
    three.wait_for_log("reboot vmN: here (state 1); carrying it out", 10)


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
    two.wait_for_log("on node 3, which left but is not known to be fenced", 10)
    # the fencing history does not answer: fenced_check_timeout (2 s) ends the check
    (tmp_path / "hang-3").write_text("")
    assert one.agent("ours", "-o", "off", "-H", "vmC")[0] == 1
    two.wait_for_log("fenced-check 3 ", 10)
    two.wait_for_log("no answer within 2 s): FAIL", 10)
    (tmp_path / "hang-3").unlink()
    # the host cluster records node 3 as fenced
    (tmp_path / "fenced-3").write_text("")
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    assert one.agent("ours", "-o", "on", "-H", "vmC")[0] == 1
    two.wait_for_log("on node 3, which is fenced", 10)
    # VMs of the living are untouched by the rule, unknown VMs still fail
    assert one.agent("ours", "-o", "status", "-H", "vmB")[0] == 0
    assert one.agent("ours", "-o", "off", "-H", "nosuch")[0] == 1
    # node 2 dies too: node 1 alone has no quorum, so nothing is reported fenced any more
    two.node.kill()
    one.wait_for_log("node 2 left fence-agents holding vmB, vmM")
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 1
    assert one.agent("C", "-o", "off", "-H", "vmB")[0] == 1
    one.wait_for_log("(this partition has no quorum): FAIL", 10)


def test_c_and_python_daemons_interoperate(hosts):
    """Node 1 runs the C fence_virtd (its cpg backend), nodes 2 and 3 ours: the README's
    advice for mixed clusters (Python hosts hold the highest node ids) keeps a request that
    arrives at the C host from being answered "success" when nobody runs the VM."""
    one, two, three = hosts
    two.start_ours(*LAYOUT[2])
    three.start_ours(*LAYOUT[3])
    one.start_c(*LAYOUT[1])
    wait_for_group(two, 3)
    # the C daemon asks; ours (node 3) carries it out and replies
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    three.wait_for_log("off vmC: here (state 1); carrying it out", 10)
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    # ours asks; the C daemon (node 1) carries it out and replies
    assert two.agent("C", "-o", "off", "-H", "vmA")[0] == 0
    assert two.agent("ours", "-o", "status", "-H", "vmA")[0] == 2
    two.wait_for_log("remote on host 1", 10)
    assert one.agent("C", "-o", "status", "-H", "vmA")[0] == 2
    # a VM nobody reported, asked at the C host: our node 3 is the highest and fails it
    assert one.agent("C", "-o", "off", "-H", "nosuch")[0] == 1
    three.wait_for_log("off nosuch: no member has reported this VM: FAIL", 10)
    # node 3 dies holding vmC: our node 2 is now the highest and fails it (not yet fenced)
    three.node.kill()
    two.wait_for_log("node 3 left fence-agents holding vmC")
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 1
    two.wait_for_log("on node 3, which left but is not known to be fenced", 10)


def test_a_c_host_with_the_highest_node_id_answers_success_for_what_nobody_runs(hosts):
    """The hazard the README warns of: node 3 runs the C fence_virtd, so the C rule decides
    for VMs no live member holds. It answers "success" for a VM nobody ever reported and
    for a VM on a host that died and is not known to be fenced; our hosts see the request
    but leave the answer to the highest node (C's rule: one answer per request), so they
    cannot prevent it."""
    one, two, three = hosts
    one.start_ours(*LAYOUT[1])
    two.start_ours(*LAYOUT[2])
    three.start_c(*LAYOUT[3])
    wait_for_group(one, 3)
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 0
    # nobody has "nosuch": C's highest node reports it off (status 2) and "fenced" (0)
    assert one.agent("ours", "-o", "status", "-H", "nosuch")[0] == 2
    assert one.agent("C", "-o", "off", "-H", "nosuch")[0] == 0
    # node 1 reads its own copy of the request beside the C node's answer: wait for its line
    one.wait_for_log("off nosuch: unknown to every member; the highest node answers", 10)
    # node 2 dies with vmB, not known to be fenced: the C node still says "fenced"
    assert one.agent("ours", "-o", "status", "-H", "vmB")[0] == 0
    two.node.kill()
    one.wait_for_log("node 2 left fence-agents holding vmB, vmM")
    assert one.agent("ours", "-o", "off", "-H", "vmB")[0] == 0
    one.wait_for_log("off vmB: departed on host 2 (state 1); the highest node answers", 10)
