"""``fence_virtd --upgrade-from`` / ``--xvmd-args``: fence_xvmd's flags and attributes.

What each flag and ``<fence_xvmd>`` attribute meant, its default, and the precedence
(cluster.conf over the flags, ``use_uuid`` only switching on, nothing read with ``-X``/``-L``)
are fence_xvmd's as read in ClusterLabs/fence-agents 0c15e1cf (fence/agents/xvm/, see
:mod:`fence_virt.daemon.upgrade_xvmd`). Every converted table row is also parsed by the C
fence_virtd (its ``-d 5`` dump, no plugin loaded); one conversion runs our daemon in a
namespace and serves the C fence_xvm.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fence_virt.config import ConfigNode, ConfigTree, parse_text
from fence_virt.daemon.upgrade import Conversion, convert
from fence_virt_testinfra.c_suite import c_config_dump, run_c_fence_xvm, write_test_node
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import FENCE_VIRTD, missing_daemon_plugins, running_fence_virtd
from fence_virt_testinfra.tools import unavailable

MCAST = "listeners/multicast/@"
CPG = "backends/cpg/@"


def mc(**values: str | None) -> dict[str, str | None]:
    """Expected keys of the multicast block."""
    return {MCAST + key: value for key, value in values.items()}


@dataclass(frozen=True)
class Row:
    """fence_xvmd's flags and/or <fence_xvmd> attributes, and keys the result must have
    (``None``: the key is absent)."""

    name: str
    args: str | None = None
    attributes: dict[str, str] | None = None
    expected: dict[str, str | None] = field(default_factory=dict)
    #: a '# not converted' comment containing this (harmless: exit 0)
    comment: str | None = None


ROWS = [
    # flags, with fence_xvmd's defaults for everything else
    Row(
        "no flags",
        "",
        expected={
            MCAST + "address": "225.0.0.12",
            MCAST + "family": "ipv4",
            MCAST + "port": "1229",
            MCAST + "key_file": "/etc/cluster/fence_xvm.key",
            MCAST + "hash": None,
            MCAST + "auth": None,
            MCAST + "interface": None,
            "fence_virtd/@backend": "cpg",
            "fence_virtd/@debug": None,
            CPG + "uri": "qemu:///system",
            CPG + "name_mode": "name",
        },
    ),
    Row("-a", "-a 225.0.0.40", expected=mc(address="225.0.0.40", family="ipv4")),
    Row("-a ipv6", "-i ipv6 -a ff05::3:9", expected=mc(address="ff05::3:9", family="ipv6")),
    Row("-i ipv6", "-i ipv6", expected=mc(address="ff05::3:1", family="ipv6")),
    Row("-i auto", "-i AUTO -a ff05::3:2", expected=mc(family="ipv6")),
    Row("-i ipv4", "-i ipv4", expected=mc(address="225.0.0.12", family="ipv4")),
    Row("-p", "-p 1300", expected=mc(port="1300")),
    Row("-p highest", "-p 65499", expected=mc(port="65499")),
    Row("-I", "-I eth1", expected=mc(interface="eth1")),
    Row("-k", "-k /etc/cluster/other.key", expected=mc(key_file="/etc/cluster/other.key")),
    Row("-c", "-c SHA512", expected=mc(hash="sha512")),
    Row("-C", "-C none", expected=mc(auth="none")),
    Row("-U", "-U xen:///", expected={CPG + "uri": "xen:///"}),
    Row("-u", "-u", expected={CPG + "name_mode": "uuid"}),
    Row(
        "-L",
        "-L",
        expected={"fence_virtd/@backend": "libvirt", "backends/libvirt/@uri": "qemu:///system"},
    ),
    Row("-L -U", "-L -U test:///default", expected={"backends/libvirt/@uri": "test:///default"}),
    Row("-d -d", "-d -d", expected={"fence_virtd/@debug": "2"}),
    Row("-ddd", "-ddd", expected={"fence_virtd/@debug": "3"}),
    Row("program name", "/usr/sbin/fence_xvmd -p 1300", expected=mc(port="1300")),
    Row("quoted", "-k '/etc/cluster/my key'", expected=mc(key_file="/etc/cluster/my key")),
    # attributes
    Row("bare element", None, {}, {MCAST + "port": "1229", "fence_virtd/@backend": "cpg"}),
    Row("multicast_address", None, {"multicast_address": "225.0.0.41"}, mc(address="225.0.0.41")),
    Row("ip_family", None, {"ip_family": "ipv6"}, mc(address="ff05::3:1", family="ipv6")),
    Row("port", None, {"port": "1301"}, mc(port="1301")),
    Row("interface", None, {"interface": "eth2"}, mc(interface="eth2")),
    Row("key_file", None, {"key_file": "/etc/cluster/k2.key"}, mc(key_file="/etc/cluster/k2.key")),
    Row("hash", None, {"hash": "sha1"}, mc(hash="sha1")),
    Row("auth", None, {"auth": "sha512"}, mc(auth="sha512")),
    Row("uri", None, {"uri": "qemu+tcp://h/system"}, {CPG + "uri": "qemu+tcp://h/system"}),
    Row("use_uuid 1", None, {"use_uuid": "1"}, {CPG + "name_mode": "uuid"}),
    Row("use_uuid 0", None, {"use_uuid": "0"}, {CPG + "name_mode": "name"}),
    Row("debug", None, {"debug": "3"}, {"fence_virtd/@debug": "3"}),
    Row("debug negative", None, {"debug": "-4"}, {"fence_virtd/@debug": "1"}),
    # precedence: cluster.conf is read after the flags and overwrites them
    Row("port over -p", "-p 1250", {"port": "1300"}, mc(port="1300")),
    Row("key_file over -k", "-k /a.key", {"key_file": "/b.key"}, mc(key_file="/b.key")),
    Row("uri over -U", "-U xen:///", {"uri": "qemu:///system"}, {CPG + "uri": "qemu:///system"}),
    Row("debug over -d", "-d -d -d", {"debug": "1"}, {"fence_virtd/@debug": "1"}),
    Row("-u and use_uuid 0", "-u", {"use_uuid": "0"}, {CPG + "name_mode": "uuid"}),
    Row("-X: element ignored", "-X -p 1250", {"port": "1300"}, mc(port="1250"), "-X/-L"),
    Row("-L: element ignored", "-L", {"port": "1300", "uri": "xen:///"},
        {MCAST + "port": "1229", "backends/libvirt/@uri": "qemu:///system"}, "-X/-L"),
    # harmless: a comment, exit 0
    Row("-f", "-f", expected=mc(port="1229"), comment="fence_xvmd -f (foreground)"),
    Row("stray word", "-p 1300 extra", expected=mc(port="1300"), comment="'extra'"),
    Row("log_level", None, {"log_level": "7"}, comment="<fence_xvmd log_level=...>"),
    Row("log_facility", None, {"log_facility": "local4"}, comment="<fence_xvmd log_facility="),
    Row("multicast_ttl", None, {"multicast_ttl": "4"}, comment="not an attribute fence_xvmd read"),
]  # fmt: skip

#: (flags, attributes, the one refused line must contain)
REFUSED = [
    (None, {"family": "ipv6"}, "<fence_xvmd family=...>: fence_xvmd(8) names it"),
    ("-h", None, "fence_xvmd -h: fence_xvmd printed its help"),
    ("-?", None, "fence_xvmd -?: fence_xvmd printed its help"),
    ("-V", None, "fence_xvmd -V: fence_xvmd printed its help or version"),
    ("-T 3", None, "fence_xvmd -T: option -T not recognized"),
    ("--port 3", None, "fence_xvmd: option --port not recognized"),
    ("-p", None, "fence_xvmd -p: option -p requires argument"),
    ("-p 0", None, "fence_xvmd -p: '0' is not a port fence_xvmd took (1-65499)"),
    ("-p 65500", None, "fence_xvmd -p: '65500' is not a port"),
    (None, {"port": "x1229"}, "<fence_xvmd port=...>: 'x1229' is not a port"),
    (None, {"hash": "md5"}, "<fence_xvmd hash=...>: 'md5' is not one of none, sha1, sha256"),
    ("-C sha3", None, "fence_xvmd -C: 'sha3' is not one of none, sha1, sha256, sha512"),
    ("-i ipv5", None, "fence_xvmd -i: 'ipv5' is not one of ipv4, ipv6, auto"),
    ("-a nope", None, "fence_xvmd -a: 'nope' is not an IP address"),
    ("-i ipv4 -a ff05::1", None, "fence_xvmd -a: ff05::1 is not ipv4 (fence_xvmd -i)"),
    ("-p 1250", {"ip_family": "ipv6", "multicast_address": "225.0.0.1"}, "is not ipv6"),
]


def cluster_conf(tmp_path: Path, attributes: dict[str, str] | None) -> str | None:
    if attributes is None:
        return None
    element = "".join(f' {key}="{value}"' for key, value in attributes.items())
    path = tmp_path / "cluster.conf"
    path.write_text(f'<cluster name="hosts" config_version="3"><fence_xvmd{element}/></cluster>')
    return str(path)


def converted(row: Row, tmp_path: Path) -> Conversion:
    return convert(cluster_conf(tmp_path, row.attributes), row.args)


def flattened(node: ConfigTree | ConfigNode, prefix: str = "") -> list[tuple[str, str]]:
    """Every value as (block path/key, value), sorted: the C dump's order does not matter."""
    pairs = [(f"{prefix}{value.key}", value.value) for value in node.values]
    for child in node.children:
        pairs += flattened(child, f"{prefix}{child.name}/")
    return sorted(pairs)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_row(row: Row, tmp_path: Path) -> None:
    conversion = converted(row, tmp_path)
    assert conversion.refused == []
    tree = parse_text(conversion.render())
    for path, value in row.expected.items():
        assert tree.get(path) == value, path
    comments = [
        line for line in conversion.render().splitlines() if line.startswith("# not converted")
    ]
    if row.comment is None:
        assert comments == []
    else:
        assert len(comments) == (2 if row.name.startswith("-L:") else 1), comments
        assert row.comment in comments[0]


@pytest.mark.c_suite
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_the_c_daemon_reads_the_row(row: Row, tmp_path: Path, c_suite: None) -> None:
    text = converted(row, tmp_path).render()
    dump = c_config_dump(text, tmp_path / "c")
    ours = parse_text(text + '\nfence_virtd {\n\tlistener = "none";\n}\n')
    c_tree = parse_text(dump)
    # the C dump holds every value we wrote, and only those (plus its own override block)
    ours_pairs = [pair for pair in flattened(ours) if pair != ("fence_virtd/listener", "none")]
    override = ("none", "none", str(tmp_path / "c" / "no-plugins"), "5")
    c_pairs = [pair for pair in flattened(c_tree) if pair[1] not in override]
    assert c_pairs == [pair for pair in ours_pairs if pair[1] not in override]
    for path, value in row.expected.items():
        if value is not None and not path.startswith("fence_virtd/"):
            assert c_tree.get(path) == value, path


@pytest.mark.parametrize(("args", "attributes", "line"), REFUSED, ids=[r[2][:40] for r in REFUSED])
def test_refused(
    args: str | None, attributes: dict[str, str] | None, line: str, tmp_path: Path
) -> None:
    conversion = convert(cluster_conf(tmp_path, attributes), args)
    assert len(conversion.refused) == 1, conversion.refused
    assert line in conversion.refused[0]
    assert f"# not converted: {conversion.refused[0]}" in conversion.render()


def fence_virtd(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FENCE_VIRTD, *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_refusals_exit_1_with_one_line_each(tmp_path: Path) -> None:
    path = cluster_conf(tmp_path, {"family": "ipv6", "hash": "md5", "log_level": "7"})
    assert path is not None
    done = fence_virtd("--upgrade-from", path, "--xvmd-args", "-p 0 -f")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "fence_virtd: not converted: <fence_xvmd family=...>: fence_xvmd(8) names it but "
        "fence_xvmd read ip_family, so it was ignored; rename it ip_family if that is what "
        "the hosts did, or remove it",
        "fence_virtd: not converted: <fence_xvmd hash=...>: 'md5' is not one of none, sha1, "
        "sha256, sha512 (fence_xvmd did not start with it)",
        "fence_virtd: not converted: fence_xvmd -p: '0' is not a port fence_xvmd took (1-65499)",
        "fence_virtd: no configuration printed: fix or remove what is named above, then "
        "convert again",
    ]
    assert done.stdout == ""
    # the harmless ones are comments only; the draft (not printed) still says everything
    draft = convert(path, "-p 0 -f").render()
    assert "# not converted: fence_xvmd -f (foreground)" in draft
    assert "# not converted: <fence_xvmd log_level=...>" in draft
    assert draft.count("# not converted: ") == 5


def test_the_command_line_alone_and_beside_a_file(tmp_path: Path) -> None:
    alone = fence_virtd("--xvmd-args", "-L -p 1300 -U test:///default")
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.startswith(
        "# converted from fence_xvmd -L -p 1300 -U test:///default by fence_virtd --xvmd-args\n"
    )
    assert parse_text(alone.stdout).get(MCAST + "port") == "1300"
    path = cluster_conf(tmp_path, {"port": "1301"})
    assert path is not None
    both = fence_virtd("--upgrade-from", path, "--xvmd-args=-p 1300 -k /etc/cluster/x.key")
    assert both.returncode == 0, both.stderr
    tree = parse_text(both.stdout)
    assert (tree.get(MCAST + "port"), tree.get(MCAST + "key_file")) == (
        "1301",
        "/etc/cluster/x.key",
    )
    assert "# note: <fence_xvmd port=...> overrides fence_xvmd -p 1300" in both.stdout
    old_name = cluster_conf(tmp_path, {"multicast_address": "225.0.0.12"})
    assert old_name is not None
    on_eth1 = fence_virtd("--upgrade-from", old_name, "--xvmd-args", "-I eth1")
    assert on_eth1.returncode == 0, on_eth1.stderr
    assert (
        "ignored interface=: if yours is one, it listened on every interface, where this "
        "file listens on eth1 only\n"
    ) in on_eth1.stdout
    other_mode = fence_virtd("--xvmd-args", "-L", "--check")
    assert other_mode.returncode == 2
    assert "--check and --xvmd-args exclude each other" in other_mode.stderr
    unclosed = fence_virtd("--xvmd-args", "-k '/etc/cluster/a key")
    assert unclosed.returncode == 1
    assert unclosed.stderr == "fence_virtd: --xvmd-args: No closing quotation\n"


@pytest.fixture
def our_daemon_plugins() -> None:
    missing = missing_daemon_plugins()
    if missing:
        unavailable(f"our fence_virtd lacks {', '.join(missing)}")


@pytest.mark.netns
@pytest.mark.c_suite
def test_a_converted_host_serves_the_c_fence_xvm(
    ns: NetNS, tmp_path: Path, key_file: Path, c_suite: None, our_daemon_plugins: None
) -> None:
    """fence_xvmd -L on its flags alone, converted, run by our daemon: the C fence_xvm
    reaches it on the converted group, port, hash and auth, and not on the defaults."""
    uri = write_test_node(tmp_path / "node.xml")
    flags = f"-L -f -U {uri} -I lo -a 225.0.0.13 -p 1300 -k {key_file} -c sha512 -C sha1"
    done = fence_virtd("--xvmd-args", flags)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "fence_virt.conf"
    config.write_text(done.stdout)
    config.chmod(0o600)
    group = ("-a", "225.0.0.13", "-p", "1300", "-c", "sha512", "-C", "sha1")
    with running_fence_virtd(ns, tmp_path / "daemon", config):
        status = run_c_fence_xvm(ns, key_file, *group, "-o", "status", "-H", "vm1")
        assert (status.returncode, status.stdout) == (0, "Status: ON\n"), status
        off = run_c_fence_xvm(ns, key_file, *group, "-o", "off", "-H", "vm1")
        assert off.returncode == 0, off
        after = run_c_fence_xvm(ns, key_file, *group, "-o", "status", "-H", "vm1")
        assert after.returncode == 2, after
        default = run_c_fence_xvm(ns, key_file, "-t", "3", "-o", "status", "-H", "vm1")
        assert default.returncode == 1, default
        assert "Timed out waiting for response" in default.stderr + default.stdout


def test_fence_xvmd_and_devices_in_one_file(tmp_path: Path) -> None:
    """fence_xvmd's socket is the first instance; a device on it must use its key, a device
    elsewhere gets an instance of its own; a second element is not read (as fence_xvmd)."""
    path = tmp_path / "cluster.conf"
    path.write_text(
        '<cluster name="c"><fence_xvmd port="1300" key_file="/k1" interface="eth1"/>'
        '<fence_xvmd port="1400"/><fencedevices>'
        '<fencedevice agent="fence_xvm" name="same" ipport="1300" key_file="/k1"/>'
        '<fencedevice agent="fence_xvm" name="other" ipport="1301" key_file="/k2"/>'
        '<fencedevice agent="fence_xvm" name="clash" ipport="1300" key_file="/k3"/>'
        "</fencedevices></cluster>"
    )
    conversion = convert(str(path))
    assert conversion.refused == [
        'fencedevice "clash": same group and port as instance multicast but another '
        "key_file, hash or auth"
    ]
    assert conversion.not_converted == ["a further <fence_xvmd> element: fence_xvmd read the first"]
    assert any(
        "took multicast_address= as the interface and ignored interface=" in n
        for n in conversion.notes
    )
    tree = parse_text(conversion.render())
    assert tree.get("listeners/multicast/@port") == "1300"
    assert tree.get("listeners/multicast/@interface") == "eth1"
    assert tree.get("listeners/other/@port") == "1301"
    assert tree.get("listeners/other/@key_file") == "/k2"
    assert tree.get("fence_virtd/@backend") == "cpg"
