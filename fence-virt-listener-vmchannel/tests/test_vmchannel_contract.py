"""The listener contract suite (fence_virt.testing) on the real vmchannel plugin, with its
default mode: a domain of libvirt's test driver (a node file, in-process) with a guestfwd
``<channel>`` whose UNIX socket the harness listens on (fence_virt.testing.guests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.testing import ListenerContract, ListenerHarness, RetransmitContract
from fence_virt.testing.guests import guest_harness
from fence_virt_listener_vmchannel import VmchannelListenerPlugin
from fence_virt_testinfra.channels import socket_domain_xml

GUEST_UUID = "c0a7ac70-0000-4000-8000-0000000000c2"


class TestVmchannelListenerContract(ListenerContract, RetransmitContract):
    @pytest.fixture
    def listener_harness(self, sock_dir: Path) -> ListenerHarness:
        channel, node = sock_dir / "guest-chan.sock", sock_dir / "node.xml"
        decoy = sock_dir / "guest-serial.sock"  # a serial device: not the vmchannel's
        domain = socket_domain_xml("contract-guest", GUEST_UUID, serial=[decoy], channels=[channel])
        node.write_text(f"<node>{domain}</node>")
        config = (
            f'listeners {{\n\tvmchannel {{\n\t\turi = "test://{node}";\n'
            f'\t\tpath = "{sock_dir}";\n\t}}\n}}\n'
        )
        return guest_harness(
            plugin=VmchannelListenerPlugin,
            name="vmchannel",
            config=config,
            socket=channel,
            requester=GUEST_UUID,
        )
