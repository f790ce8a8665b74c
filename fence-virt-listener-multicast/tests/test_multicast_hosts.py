"""Several hosts in one multicast group on the plain libvirt backend (issue 17, "hosts
without the VM"): with ``unknown_vm = "silent"`` a host that does not have the VM never
connects back, so the C fence_xvm always reaches the host that has it.

Topology (:func:`fence_virt_testinfra.topology.bridged_hosts`): a client namespace with
bridge br0 (198.51.100.1) and two host namespaces on it (.11 and .12), each running our
fence_virtd with the multicast listener on its veth and libvirt's test driver in-process:
host 1 ``test:///default`` (the domain ``test``), host 2 a node file with ``vm1`` and
``vm2`` only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import write_test_node
from fence_virt_testinfra.topology import bridged_hosts

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]


def config(key: Path, interface: str, uri: str, unknown_vm: str) -> str:
    return (
        'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "libvirt";\n}\n'
        f'listeners {{\n\tmulticast {{\n\t\tkey_file = "{key}";\n'
        f'\t\tinterface = "{interface}";\n\t}}\n}}\n'
        f'backends {{\n\tlibvirt {{\n\t\turi = "{uri}";\n'
        f'\t\tunknown_vm = "{unknown_vm}";\n\t}}\n}}\n'
    )


def test_only_the_host_with_the_vm_answers(tmp_path, key_file, daemons, fence_xvm) -> None:
    node_uri = write_test_node(tmp_path / "node.xml")
    with bridged_hosts() as (client, (first, second)):
        daemons.ours_text(first, config(key_file, "uv1", "test:///default", "silent"))
        other = daemons.ours_text(second, config(key_file, "uv2", node_uri, "silent"))
        for operation in ("status", "off", "on", "reboot", "status"):
            done = fence_xvm(client, key_file, "-t", "10", "-o", operation, "-H", "test")
            assert done.returncode == 0, (operation, done.stdout, done.stderr)
        # a VM neither host has: no host answers, the agent times out (a failure)
        nobody = fence_xvm(client, key_file, "-t", "3", "-o", "off", "-H", "nosuch")
        assert nobody.returncode == 1
        # while the host that has them still answers for its own
        theirs = fence_xvm(client, key_file, "-t", "10", "-o", "status", "-H", "vm1")
        assert (theirs.returncode, theirs.stdout) == (0, "Status: ON\n")
        log = other.log()
    silent = re.findall(r"(\w+) test \(requester 198\.51\.100\.1, .*not here, no answer", log)
    assert set(silent) == {"status", "off", "on", "reboot"}
    assert "off nosuch (requester 198.51.100.1" in log
    assert not re.search(r"(off|on|reboot|status) test .*: (fail|success)", log)


def test_with_unknown_vm_fail_a_host_without_the_vm_answers(
    tmp_path, key_file, daemons, fence_xvm
) -> None:
    """The default (C's behaviour): one host, a VM it does not have: failure at once."""
    node_uri = write_test_node(tmp_path / "node.xml")
    with bridged_hosts() as (client, (first, _)):
        daemon = daemons.ours_text(first, config(key_file, "uv1", node_uri, "fail"))
        done = fence_xvm(client, key_file, "-t", "10", "-o", "off", "-H", "test")
        assert (done.returncode, done.stdout) == (1, "Operation failed\n")
        assert "not here" not in daemon.log()
