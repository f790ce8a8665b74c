"""The amqp page of ``fence_virtd -c``, typed on a real pseudo-terminal.

The file the wizard writes must build the backend as the daemon would (the plugin's create
hook: every key checked; no broker is contacted until the backend starts).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.config import ConfigSection, load_file
from fence_virt_backend_amqp.plugin import AmqpBackendPlugin
from fence_virt_testinfra.ours import FENCE_VIRTD
from fence_virt_testinfra.terminal import Terminal


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(FENCE_VIRTD, "-c", "-f", str(tmp_path / "fence_virt.conf"))
    yield term
    term.close()


def test_the_amqp_page_writes_a_block_the_backend_accepts(
    terminal: Terminal, tmp_path: Path
) -> None:
    config = tmp_path / "fence_virt.conf"
    password = tmp_path / "amqp.password"
    password.write_text("secret\n")
    password.chmod(0o600)
    for prompt in ("Listener module [multicast]: ", "Address", "Port", "Interface", "Key File"):
        terminal.answer(prompt, "")
    terminal.answer("Backend module [libvirt]: ", "amqp")
    terminal.answer("Libvirt URI [qemu:///system]: ", "")
    terminal.expect("Each host sharing the broker needs its own number")
    terminal.answer("This host's number: ", "")
    terminal.expect("An answer is required.")
    terminal.answer("This host's number: ", "0")
    terminal.expect("0 is not a host number (1-2147483647).")
    terminal.answer("This host's number: ", "2")
    terminal.answer(
        "Broker URL (amqp[s]://USER@HOST:PORT/VHOST) [amqp://127.0.0.1:5672/]: ",
        "amqps://fence@mq.example:5671/guests-a",
    )
    terminal.answer("Broker password file [none]: ", str(password))
    terminal.answer("CA file of the broker (amqps) [none]: ", "/etc/fence_virt/mq-ca.pem")
    terminal.answer("Exchange [fence-virt]: ", "guests-a")
    terminal.expect("never reported fenced")
    terminal.answer("Command that confirms a departed host was fenced [none]: ", "")
    terminal.answer("with the above [y/N]? ", "y")
    assert terminal.wait() == 0

    tree = load_file(config)
    assert tree.get("fence_virtd/@backend") == "amqp"
    assert tree.get("backends/amqp/@uri") == "qemu:///system"
    assert tree.get("backends/amqp/@host_id") == "2"
    assert tree.get("backends/amqp/@url") == "amqps://fence@mq.example:5671/guests-a"
    assert tree.get("backends/amqp/@password_file") == str(password)
    assert tree.get("backends/amqp/@tls_ca") == "/etc/fence_virt/mq-ca.pem"
    assert tree.get("backends/amqp/@exchange") == "guests-a"
    assert tree.get("backends/amqp/@fenced_check") is None
    section = ConfigSection("backends/amqp", tree.node("backends/amqp"), tree.source)
    backend = AmqpBackendPlugin().fence_virt_backend_create(section=section)
    assert "guests-a" in backend.describe()


def test_running_the_wizard_again_keeps_every_hypervisor(tmp_path: Path) -> None:
    """``uri`` repeats in the amqp block (one per hypervisor of this host): answering the
    page again, to change the exchange, must keep the second one -- its VMs would no
    longer be announced, so never fenced through this host."""
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "amqp";\n}\n'
        'backends {\n\tamqp {\n\t\turi = "qemu:///system";\n\t\turi = "lxc:///system";\n'
        '\t\thost_id = "3";\n\t\ttls_cert = "/etc/fence_virt/host.pem";\n\t}\n}\n'
    )
    done = subprocess.run(
        [FENCE_VIRTD, "-c", "-f", str(config), "--answer", "backends/amqp/exchange=guests-b"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    tree = load_file(config)
    amqp = tree.node("backends/amqp")
    assert amqp is not None
    assert amqp.all_values("uri") == ("qemu:///system", "lxc:///system")
    assert tree.get("backends/amqp/@exchange") == "guests-b"
    assert tree.get("backends/amqp/@tls_cert") == "/etc/fence_virt/host.pem"
    changed = subprocess.run(
        [FENCE_VIRTD, "-c", "-f", str(config), "--answer", "backends/amqp/uri=qemu:///session"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert changed.returncode == 0, changed.stderr
    amqp = load_file(config).node("backends/amqp")
    assert amqp is not None
    assert amqp.all_values("uri") == ("qemu:///session", "lxc:///system")
