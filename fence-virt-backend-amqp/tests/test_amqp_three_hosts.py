"""Three hosts on one real RabbitMQ, each a fence_virtd (amqp backend) holding different VMs:
host 1 vmA, host 2 vmB and vmM, host 3 vmC. All run on the loopback of the broker's
namespace with tcp listeners on ports 1301-1303; agents (``fence_virt -T``, C's and ours)
ask one host's daemon and the request travels through the broker to the VM's host.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.amqp_hosts import AmqpHost
from fence_virt_testinfra.c_suite import have_c_suite, write_key
from fence_virt_testinfra.cpg_hosts import write_check
from fence_virt_testinfra.processes import wait_until
from fence_virt_testinfra.rabbitmq import Broker
from fence_virt_testinfra.tools import unavailable

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

LAYOUT = {1: ("vmA",), 2: ("vmB", "vmM"), 3: ("vmC",)}


@pytest.fixture
def hosts(
    request: pytest.FixtureRequest, broker: Broker, tmp_path: Path, exchange: str
) -> Iterator[list[AmqpHost]]:
    """Hosts 1-3 started with LAYOUT and aware of one another; every daemon stopped after.
    An indirect parameter gives extra keys for every host's amqp block."""
    if not have_c_suite():
        unavailable("the C fence-virt suite is not installed")
    key = write_key(tmp_path / "fence_xvm.key")
    check = write_check(tmp_path)
    extra: dict[str, str] = getattr(request, "param", {})
    hosts = [
        AmqpHost(broker, n, tmp_path, key, exchange, check, extra=dict(extra)) for n in (1, 2, 3)
    ]
    try:
        for host in hosts:
            host.start(*LAYOUT[host.host_id])
        for host in hosts:
            for other in (1, 2, 3):
                if other != host.host_id:
                    host.wait_for_log(f"host {other} announces on {exchange}")
        yield hosts
    finally:
        for host in hosts:
            host.stop()


def test_a_request_at_host_1_for_a_vm_on_host_3_is_carried_out_on_host_3(hosts):
    one, two, three = hosts
    assert one.agent("C", "-o", "status", "-H", "vmC")[0] == 0
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    assert "off vmC: here (state 1); carrying it out" in three.log()
    assert "destroying VM vmC" in three.log()
    assert "off vmC: remote on host 3 (state 1); sending it there" in one.log()
    assert "destroying VM vmC" not in one.log()
    # host 3's own libvirt says so, and host 2 learns it from host 3's announcement
    assert three.agent("ours", "-o", "list")[1].split()[:3] == [
        "vmC",
        "cccccccc-0000-0000-0000-000000000003",
        "off",
    ]
    assert two.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    assert one.agent("ours", "-o", "on", "-H", "vmC")[0] == 0
    assert three.agent("C", "-o", "status", "-H", "vmC")[0] == 0
    # by UUID too; a VM no host announced fails
    assert two.agent("ours", "-o", "status", "-H", "cccccccc-0000-0000-0000-000000000003")[0] == 0
    assert one.agent("C", "-o", "off", "-H", "nosuch")[0] == 1
    assert "off nosuch: no host has announced this VM: FAIL" in one.log()


def test_a_second_daemon_with_the_same_host_id_is_refused_at_start_up(hosts, broker):
    one = hosts[0]
    twin = AmqpHost(broker, 1, one.workdir / "twin", one.key, one.exchange)
    twin.workdir.mkdir()
    try:
        daemon = twin.start("vmA", wait=False)
        assert daemon.process.wait(30) != 0
        assert "backend amqp failed to start" in twin.log()
        assert "RESOURCE_LOCKED" in twin.log()
    finally:
        twin.stop()
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 0


def test_after_migration_the_new_owner_acts(hosts):
    one, two, three = hosts
    assert one.agent("ours", "-o", "status", "-H", "vmM")[0] == 0
    assert "status vmM: here" in two.log()
    # "migrate" vmM: running on host 3 too, then gone from host 2
    three.start("vmC", "vmM")
    two.start("vmB")
    one.wait_for_log("VM vmM (dddddddd-0000-0000-0000-000000000004) moved from host 2 to host 3")
    two.wait_for_log("host 3 announces")
    assert one.agent("C", "-o", "off", "-H", "vmM")[0] == 0
    assert "off vmM: here (state 1); carrying it out" in three.log()
    assert "destroying VM vmM" in three.log()
    assert two.agent("ours", "-o", "status", "-H", "vmM")[0] == 2
    assert "status vmM: remote on host 3" in two.log()


def test_a_killed_hosts_vms_are_fenced_only_once_it_is_recorded_fenced(hosts, tmp_path):
    one, two, three = hosts
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 0
    three.kill()  # host 3 dies: its VMs may still run
    # at once, before it counts as departed: its queue is gone, so the request fails
    assert one.agent("ours", "-o", "off", "-H", "vmC")[0] == 1
    one.wait_for_log("host 3 departed (no announcement for 3 s) holding vmC")
    two.wait_for_log("host 3 departed (no announcement for 3 s) holding vmC")
    # not yet recorded as fenced: failure, for off, reboot and status alike
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 1
    assert one.agent("ours", "-o", "reboot", "-H", "vmC")[0] == 1
    assert two.agent("ours", "-o", "status", "-H", "vmC")[0] == 1
    assert "on host 3, which departed but is not known to be fenced" in one.log()
    # the host cluster records host 3 as fenced
    (tmp_path / "fenced-3").write_text("")
    assert one.agent("C", "-o", "off", "-H", "vmC")[0] == 0
    assert two.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    assert one.agent("ours", "-o", "on", "-H", "vmC")[0] == 1
    assert "on host 3, which is fenced" in one.log()
    # the living are untouched by the rule; unknown VMs still fail
    assert one.agent("ours", "-o", "status", "-H", "vmB")[0] == 0
    assert one.agent("ours", "-o", "off", "-H", "nosuch")[0] == 1
    # host 3 comes back: its own word counts again
    three.start("vmC")
    wait_until(lambda: one.log().count("host 3 announces") == 2, 10, "host 3 back")
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 0


# request_timeout 60 s (8 s elsewhere): a loaded machine's graceful broker stop can take
# longer than 8 s, and the request must fail because the connection went, not by its timeout
@pytest.mark.parametrize("hosts", [{"request_timeout": "60"}], indirect=True)
def test_broker_restarted_mid_request_fails_it_cleanly_and_the_next_succeeds(hosts, broker):
    one, _two, three = hosts
    three.freeze(True)  # host 3 takes the request but cannot act on it yet
    agent = subprocess.Popen(
        broker.ns.argv(*one.agent_argv("ours", "-o", "off", "-H", "vmC")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        one.wait_for_log("off vmC: remote on host 3 (state 1); sending it there")
        broker.restart()
        one.wait_for_log("the broker connection was lost (")
        assert agent.wait(30) == 1
        assert "off vmC: remote on host 3" not in one.log().split("connection was lost")[-1]
    finally:
        three.freeze(False)
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    for host in hosts:
        host.wait_for_log("reconnected to the broker", 30)
    wait_until(lambda: one.log().count("host 3 announces") == 2, 10, "host 3 heard again")
    time.sleep(2)  # a refresh round: every host has re-announced since reconnecting
    assert one.agent("ours", "-o", "off", "-H", "vmC")[0] == 0
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 2
    # the interrupted request was decided at most once, the next one once
    assert three.log().count("destroying VM vmC") <= 1
    assert all(three.log().count(f"request 1:{n}: off vmC: here") <= 1 for n in range(1, 9))


def test_a_host_cut_off_from_the_broker_declares_nobody_fenced(hosts, broker, tmp_path):
    one, _two, _three = hosts
    (tmp_path / "fenced-3").write_text("")  # the check would say yes: the rule must still hold
    (tmp_path / "fenced-2").write_text("")
    broker.stop()
    one.wait_for_log("host 3 departed (no announcement for 3 s) holding vmC")
    # every other host went silent because *this* host lost the broker: no one is fenced
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 1
    assert one.agent("C", "-o", "off", "-H", "vmB")[0] == 1
    assert "which departed but is not known to be fenced (this host is not connected" in one.log()
    assert "destroying" not in one.log()
    broker.start()
    for host in hosts:
        host.wait_for_log("reconnected to the broker", 30)
    wait_until(lambda: one.log().count("host 3 announces") == 2, 10, "host 3 heard again")
    assert one.agent("ours", "-o", "status", "-H", "vmC")[0] == 0
