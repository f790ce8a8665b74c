"""The listener contract suite (fence_virt.testing) on the real serial plugin: the listener
discovers a domain of libvirt's test driver (a node file, in-process) whose serial device is
a UNIX socket the harness listens on, as QEMU would, and the harness's client writes serial
requests on it (fence_virt.testing.guests). Includes the retransmit check: a copy of a
request (same seqno) runs once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.testing import ListenerContract, ListenerHarness, RetransmitContract
from fence_virt.testing.guests import guest_harness
from fence_virt_listener_serial import SerialListenerPlugin
from fence_virt_testinfra.channels import socket_domain_xml

GUEST_UUID = "c0a7ac70-0000-4000-8000-0000000000c1"


class TestSerialListenerContract(ListenerContract, RetransmitContract):
    @pytest.fixture
    def listener_harness(self, sock_dir: Path) -> ListenerHarness:
        socket, node = sock_dir / "guest.sock", sock_dir / "node.xml"
        domain = socket_domain_xml("contract-guest", GUEST_UUID, serial=[socket])
        node.write_text(f"<node>{domain}</node>")
        config = (
            f'listeners {{\n\tserial {{\n\t\turi = "test://{node}";\n'
            f'\t\tpath = "{sock_dir}";\n\t}}\n}}\n'
        )
        return guest_harness(
            plugin=SerialListenerPlugin,
            name="serial",
            config=config,
            socket=socket,
            requester=GUEST_UUID,
        )
