"""``fence_virtd --upgrade-from cluster.conf``: fence_xvm-era setups converted.

The inputs are cluster.conf files as the cman-era cluster tools wrote them: a host cluster's
``<fence_xvmd/>`` element, and a guest cluster's ``<fencedevice agent="fence_xvm" .../>``
whose attributes are fence_xvm's stdin arguments (names and defaults: c-suite-spec §4.2).
The output is read back by our daemon's check and by the C wizard.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from fence_virt.config import parse_text
from fence_virt.daemon.upgrade import convert
from fence_virt_testinfra.c_suite import C_FENCE_VIRTD
from fence_virt_testinfra.ours import FENCE_VIRTD

HOST_CLUSTER = """<?xml version="1.0"?>
<cluster name="hosts" config_version="12">
  <cman two_node="1" expected_votes="1"/>
  <clusternodes>
    <clusternode name="host1" nodeid="1"><fence><method name="1">
      <device name="ipmi1"/></method></fence></clusternode>
    <clusternode name="host2" nodeid="2"/>
  </clusternodes>
  <fencedevices><fencedevice agent="fence_ipmilan" name="ipmi1" ipaddr="198.51.100.9"/>
  </fencedevices>
  <fence_xvmd/>
</cluster>
"""

GUEST_CLUSTER = """<?xml version="1.0"?>
<cluster name="guests" config_version="4">
  <clusternodes>
    <clusternode name="vm1" nodeid="1"><fence><method name="1">
      <device name="xvm" domain="vm1"/></method></fence></clusternode>
    <clusternode name="vm2" nodeid="2"><fence><method name="1">
      <device name="xvm-b" domain="vm2"/></method></fence></clusternode>
  </clusternodes>
  <fencedevices>
    <fencedevice agent="fence_xvm" name="xvm" key_file="/etc/cluster/guests.key"
        use_uuid="1" timeout="40"/>
    <fencedevice agent="/sbin/fence_xvm" name="xvm-b" multicast_address="225.0.0.13"
        ipport="1230" hash="sha1" auth="sha512" retrans="10"/>
    <fencedevice agent="fence_xvm" name="xvm-again" key_file="/etc/cluster/guests.key"/>
  </fencedevices>
</cluster>
"""


#: the last line of a conversion that refused something (nothing on standard output)
NOTHING_PRINTED = (
    "fence_virtd: no configuration printed: fix or remove what is named above, then convert again"
)


def drafted(tmp_path: Path) -> str:
    """The annotated draft of the last :func:`upgrade` (the API renders it even where the
    command refuses to print it)."""
    return convert(str(tmp_path / "cluster.conf"), None).render()


def upgrade(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "cluster.conf"
    source.write_text(text)
    return subprocess.run(
        [FENCE_VIRTD, "--upgrade-from", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fence_xvmd_host(tmp_path: Path) -> None:
    done = upgrade(tmp_path, HOST_CLUSTER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# converted from cluster.conf by fence_virtd --upgrade-from\n")
    tree = parse_text(done.stdout)
    assert tree.get("fence_virtd/@listener") == "multicast"
    assert tree.get("fence_virtd/@backend") == "cpg"
    assert tree.get("backends/cpg/@name_mode") == "name"
    assert tree.get("backends/cpg/@uri") == "qemu:///system"
    assert tree.get("listeners/multicast/@address") == "225.0.0.12"
    assert tree.get("listeners/multicast/@port") == "1229"
    assert tree.get("listeners/multicast/@key_file") == "/etc/cluster/fence_xvm.key"
    assert "fence_ipmilan" not in done.stdout  # the host cluster's own fencing is not ours


def test_the_c_wizard_reads_the_converted_host(tmp_path: Path, c_suite: None) -> None:
    done = upgrade(tmp_path, HOST_CLUSTER)
    converted = tmp_path / "fence_virt.conf"
    converted.write_text(done.stdout)
    c_run = subprocess.run(
        [C_FENCE_VIRTD, "-c", "-f", str(converted)],
        input="\n" * 14,  # every default, and "no" to writing
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Parsing of" not in c_run.stdout, c_run.stdout
    for offered in (
        "Listener module [multicast]: ",
        "Multicast IP Address [225.0.0.12]: ",
        "Key File [/etc/cluster/fence_xvm.key]: ",
        "Backend module [cpg]: ",
        "Libvirt URI [qemu:///system]: ",
        "VM naming/tracking mode (name or uuid) [name]: ",
    ):
        assert offered in c_run.stdout


def test_a_guest_cluster_s_devices(tmp_path: Path) -> None:
    done = upgrade(tmp_path, GUEST_CLUSTER)
    assert done.returncode == 0, done.stderr
    tree = parse_text(done.stdout)
    daemon = next(node for node in tree.children if node.name == "fence_virtd")
    assert [v.value for v in daemon.values if v.key == "listener"] == ["multicast", "xvm-b"]
    assert tree.get("fence_virtd/@backend") == "libvirt"
    assert tree.get("listeners/multicast/@key_file") == "/etc/cluster/guests.key"
    assert tree.get("listeners/multicast/@port") == "1229"
    assert tree.get("listeners/multicast/@hash") is None  # fence_xvm's default: the host's
    assert tree.get("listeners/xvm-b/@plugin") == "multicast"
    assert tree.get("listeners/xvm-b/@address") == "225.0.0.13"
    assert tree.get("listeners/xvm-b/@port") == "1230"
    assert tree.get("listeners/xvm-b/@key_file") == "/etc/cluster/fence_xvm.key"
    assert tree.get("listeners/xvm-b/@hash") == "sha1"  # the minimum that admits the agent
    assert tree.get("listeners/xvm-b/@auth") == "sha512"
    for guest_only in ("use_uuid", "timeout", "retrans", "domain"):
        assert guest_only not in done.stdout
    assert "# note: several listener instances" in done.stdout
    # our daemon reads the layout: the check gets past parsing and names both instances
    converted = tmp_path / "fence_virt.conf"
    converted.write_text(done.stdout)
    checked = subprocess.run(
        [FENCE_VIRTD, "--check", "-f", str(converted)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "listener multicast, xvm-b, backend libvirt" in checked.stdout, checked


def test_what_fence_xvmd_did_not_read_is_not_guessed(tmp_path: Path) -> None:
    # family= is in fence_xvmd(8) but the daemon read ip_family: refused, not applied;
    # colour= was ignored by fence_xvmd: a comment only (test_upgrade_xvmd has every attribute)
    done = upgrade(
        tmp_path,
        HOST_CLUSTER.replace("<fence_xvmd/>", '<fence_xvmd family="ipv6" colour="red"/>'),
    )
    assert done.returncode == 1
    assert done.stdout == ""  # no partial configuration to redirect into place
    draft = drafted(tmp_path)
    assert "# not converted: <fence_xvmd family=...>" in draft
    assert "# not converted: <fence_xvmd colour=...>: not an attribute" in draft
    assert done.stderr.startswith("fence_virtd: not converted: <fence_xvmd family=...>")
    assert done.stderr.splitlines()[1:] == [NOTHING_PRINTED]
    assert 'family = "ipv4";' in draft  # not ipv6: fence_xvmd did not read it
    assert 'port = "1229";' in draft
    clash = GUEST_CLUSTER.replace(
        'name="xvm-again" key_file="/etc/cluster/guests.key"',
        'name="xvm-again" key_file="/etc/cluster/other.key" colour="red"',
    )
    done = upgrade(tmp_path, clash)
    assert done.returncode == 1
    assert done.stdout == ""
    draft = drafted(tmp_path)
    assert '# not converted: fencedevice "xvm-again": same group and port' in draft
    assert '# not converted: fencedevice "xvm-again" colour=...' in draft
    assert len(done.stderr.splitlines()) == 3
    # cluster.git's fence_xvm read port= as the IP port, fence-virt's as the VM: a number there
    # is refused; multicast_ttl (cluster.git's fence_xvm -T) acts in the guest only
    ambiguous = GUEST_CLUSTER.replace('name="xvm-again"', 'name="xvm-again" port="1231"')
    done = upgrade(tmp_path, ambiguous.replace('retrans="10"', 'multicast_ttl="4"'))
    assert done.returncode == 1
    assert done.stderr == (
        'fence_virtd: not converted: fencedevice "xvm-again" port=1231: the IP port for the '
        "cluster packages' fence_xvm, a VM name for the C fence-virt suite's since its 0.3.1; "
        "write ipport= if it is the port\n" + NOTHING_PRINTED + "\n"
    )
    assert "multicast_ttl" not in drafted(tmp_path)


def test_inputs_that_cannot_be_converted(tmp_path: Path) -> None:
    for text, message in (
        ("fence_virtd { }", "not a cluster.conf (XML)"),
        ('<cluster name="c"><clusternodes/></cluster>', "nothing to convert"),
        (
            '<cluster><fencedevices><fencedevice agent="fence_xvm" name="x" ipport="0"/>'
            "</fencedevices></cluster>",
            "fencedevice \"x\": ipport='0' is not a port number (1-65535)",
        ),
        (
            '<cluster><fencedevices><fencedevice agent="fence_xvm" name="x" '
            'multicast_address="mcast.example"/></fencedevices></cluster>',
            "multicast_address='mcast.example' is not an IP address",
        ),
    ):
        done = upgrade(tmp_path, text)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.startswith("fence_virtd: "), done.stderr
        assert message in done.stderr
    missing = subprocess.run(
        [FENCE_VIRTD, "--upgrade-from", str(tmp_path / "absent.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert "absent.conf: No such file or directory" in missing.stderr
