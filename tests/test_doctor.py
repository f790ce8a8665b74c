"""``fence_virtd --check`` on the real multicast listener and libvirt backend, in namespaces.

The three misconfigurations users report most: a wrong libvirt URI (no VMs visible), a key
mismatch between host and guest, and multicast not reaching the host. Each must give one
``PROBLEM`` line saying what to do, and exit 1; a correct setup exits 0.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import MulticastSetup, write_key, write_test_node
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_VIRTD, missing_daemon_plugins
from fence_virt_testinfra.topology import GuestHost

pytestmark = pytest.mark.netns

#: a test-driver node without domains: libvirt connects and lists nothing, as a wrong URI
EMPTY_NODE_XML = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes>
    <sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>
  <memory>8388608</memory>
</node>
"""


@pytest.fixture(autouse=True)
def _plugins() -> None:
    missing = missing_daemon_plugins()
    assert not missing, f"the workspace lacks {missing}"


def check(ns: NetNS, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = ns.run(FENCE_VIRTD, "--check", "-f", str(config), *extra, check=False)
    assert result.stderr == "", result.stderr
    return result


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]


def setup_in(pair: GuestHost, tmp_path: Path, **fields: object) -> Path:
    """A config for the host namespace of ``pair``: interface hveth, the 3-VM test node."""
    uri = write_test_node(tmp_path / "node.xml")
    key = write_key(tmp_path / "fence_xvm.key")
    setup = MulticastSetup(key_file=key, uri=uri, interface=pair.host_if)
    for name, value in fields.items():
        setattr(setup, name, value)
    return setup.write(tmp_path / "fence_virt.conf")


def test_a_correct_setup_passes(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path, groups=[("c1", [guest_host.guest_ip], ["vm1"])])
    result = check(guest_host.host, config, "--key-of-guest", str(tmp_path / "fence_xvm.key"))
    assert result.returncode == 0, result.stdout
    out = result.stdout
    assert "interface hveth is up and multicast-capable" in out
    assert "UDP port 1229 can be bound and 225.0.0.12 joined" in out
    assert "has 3 VM(s)" in out
    assert "sees 3 VM(s): vm1, vm2, vm3-with-a-long-name-0123456789" in out
    assert "is the same" in out
    assert out.splitlines()[-1] == "no problems found"


# --- wrong libvirt URI --------------------------------------------------------------------------


def test_a_uri_without_vms_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_text(EMPTY_NODE_XML)
    config = setup_in(guest_host, tmp_path, uri=f"test://{empty}")
    result = check(guest_host.host, config)
    assert result.returncode == 1
    [line] = problems(result)
    assert f"backend libvirt: test://{empty} connects but has no VMs" in line
    assert "set uri in backends/libvirt to the hypervisor the guests run on" in line


def test_an_unreachable_uri_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-libvirtd.sock"
    config = setup_in(guest_host, tmp_path, uri=uri)
    result = check(guest_host.host, config)
    assert result.returncode == 1
    [line] = problems(result)
    assert "backend libvirt: does not start: could not connect to any hypervisor" in line
    assert "check backends/libvirt" in line


def test_a_static_map_naming_an_unknown_vm_is_a_problem(
    guest_host: GuestHost, tmp_path: Path
) -> None:
    groups = [("c1", [guest_host.guest_ip], ["vm1", "vm9"])]
    result = check(guest_host.host, setup_in(guest_host, tmp_path, groups=groups))
    assert result.returncode == 1
    [line] = problems(result)
    assert "group c1 names VM 'vm9', which backend libvirt does not see" in line


# --- keys -----------------------------------------------------------------------------------------


def test_a_guest_key_that_differs_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path)
    guest_key = write_key(tmp_path / "guest.key")
    result = check(guest_host.host, config, "--key-of-guest", str(guest_key))
    assert result.returncode == 1
    [line] = problems(result)
    assert f"the guest's key {guest_key} differs" in line
    assert "every request it signs is dropped" in line
    assert f"copy {tmp_path}/fence_xvm.key unchanged to every guest" in line


def test_a_trailing_newline_difference_is_named(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path)
    write_key(tmp_path / "fence_xvm.key", b"secret\n")
    guest_key = write_key(tmp_path / "guest.key", b"secret")
    result = check(guest_host.host, config, "--key-of-guest", str(guest_key))
    [line] = problems(result)
    assert "differs only by a trailing newline" in line


def test_an_empty_key_file_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path)
    write_key(tmp_path / "fence_xvm.key", b"")
    result = check(guest_host.host, config)
    assert result.returncode == 1
    [line] = problems(result)
    assert f"listener multicast: key file {tmp_path}/fence_xvm.key is empty" in line


def test_a_missing_key_file_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path)
    (tmp_path / "fence_xvm.key").unlink()
    [line] = problems(check(guest_host.host, config))
    assert f"key file {tmp_path}/fence_xvm.key: No such file or directory" in line


def test_a_key_file_readable_by_others_is_tightened_with_a_warning(
    guest_host: GuestHost, tmp_path: Path
) -> None:
    config = setup_in(guest_host, tmp_path)
    key = tmp_path / "fence_xvm.key"
    key.chmod(0o644)
    result = check(guest_host.host, config)
    assert result.returncode == 0, result.stdout
    assert (
        f"warning  listener multicast: insecure permissions on key file {key}: "
        "changing from 0644 to 0600"
    ) in result.stdout
    assert key.stat().st_mode & 0o777 == 0o600


# --- multicast not reaching the host ----------------------------------------------------------


def test_no_route_to_the_group_is_a_problem(ns: NetNS, tmp_path: Path) -> None:
    """A host with only ``lo`` and no interface configured: the kernel has no route."""
    key = write_key(tmp_path / "fence_xvm.key")
    setup = MulticastSetup(key_file=key, uri=write_test_node(tmp_path / "node.xml"))
    text = setup.config_text().replace('\t\tinterface = "lo";\n', "")
    config = tmp_path / "fence_virt.conf"
    config.write_text(text)
    config.chmod(0o600)
    result = check(ns, config)
    assert result.returncode == 1
    [line] = problems(result)
    assert "no route to multicast group 225.0.0.12 and no interface set" in line
    assert "ip route add 224.0.0.0/4 dev NAME" in line


def test_a_down_interface_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path)
    guest_host.host.ip("link", "set", guest_host.host_if, "down")
    [line] = problems(check(guest_host.host, config))
    assert "interface hveth is down: no multicast reaches this host on it" in line
    assert "ip link set hveth up" in line


def test_a_missing_interface_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path, interface="virbr7")
    [line] = problems(check(guest_host.host, config))
    assert "no network interface named 'virbr7'" in line


def test_a_port_in_use_is_a_problem(guest_host: GuestHost, tmp_path: Path) -> None:
    config = setup_in(guest_host, tmp_path)
    holder = subprocess.Popen(
        guest_host.host.argv(
            "python3",
            "-c",
            "import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
            "s.bind(('0.0.0.0',1229));print('bound',flush=True);time.sleep(60)",
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "bound"
        [line] = problems(check(guest_host.host, config))
    finally:
        holder.kill()
        holder.wait()
    assert "cannot bind UDP port 1229: Address already in use" in line
    assert "stop what holds UDP port 1229" in line


def test_a_missing_interface_does_not_hide_a_missing_key_file(
    guest_host: GuestHost, tmp_path: Path
) -> None:
    """Debian's C config names virbr0 and /etc/fence_virt.key: both wrong on a fresh host,
    and the administrator learns of both from one run."""
    config = setup_in(guest_host, tmp_path, interface="virbr7")
    (tmp_path / "fence_xvm.key").unlink()
    result = check(guest_host.host, config)
    assert result.returncode == 1
    interface, key = problems(result)
    assert "no network interface named 'virbr7'" in interface
    assert f"key file {tmp_path}/fence_xvm.key: No such file or directory" in key
