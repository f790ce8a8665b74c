"""``fence_virtd --upgrade-from`` against odd and hostile inputs.

Each case is one a conversion once got wrong: it changed where fencing goes without a
refusal, crashed with a traceback, or converted a setup the old daemon never ran. The facts
are fence_xvmd's and fence_xvm's (ClusterLabs/fence-agents 0c15e1cf, fence/agents/xvm/:
options.c ``args_init``/``args_finalize``/``assign_port``, options-ccs.c's
``/cluster/fence_xvmd/@NAME`` query, mcast.c ``ipv4_recv_sk``; c-suite-spec §4.2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon.upgrade import Conversion, convert
from fence_virt.errors import UserError
from fence_virt_testinfra.ours import FENCE_VIRTD


def conf(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "cluster.conf"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def device(name: str, **attributes: str) -> str:
    more = "".join(f' {key}="{value}"' for key, value in attributes.items())
    return f'<fencedevice agent="fence_xvm" name="{name}"{more}/>'


def guests(*devices: str) -> str:
    return f"<cluster><fencedevices>{''.join(devices)}</fencedevices></cluster>"


def listeners(conversion: Conversion) -> dict[str, str | None]:
    """instance name -> its port, for every instance the daemon block names."""
    tree = parse_text(conversion.render())
    daemon = tree.node("fence_virtd")
    assert daemon is not None
    names = daemon.all_values("listener")
    assert len({name.casefold() for name in names}) == len(names), names
    return {name: tree.get(f"listeners/{name}/@port") for name in names}


# -- only where fence_xvmd and fenced looked ------------------------------------------------


def test_a_fence_xvmd_element_below_another_is_not_what_fence_xvmd_read(tmp_path: Path) -> None:
    """options-ccs.c asked for /cluster/fence_xvmd/@port: an element elsewhere was not read."""
    text = '<cluster><rm><fence_xvmd port="1300" key_file="/k"/></rm><fence_xvmd/></cluster>'
    conversion = convert(conf(tmp_path, text))
    tree = parse_text(conversion.render())
    assert tree.get("listeners/multicast/@port") == "1229"
    assert tree.get("listeners/multicast/@key_file") == "/etc/cluster/fence_xvm.key"
    assert any("not directly under <cluster>" in line for line in conversion.not_converted)
    assert conversion.refused == []


def test_a_nested_element_alone_is_nothing_to_convert(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nothing to convert"):
        convert(conf(tmp_path, '<cluster><rm><fence_xvmd port="1300"/></rm></cluster>'))


def test_a_fencedevice_outside_fencedevices_is_not_a_device(tmp_path: Path) -> None:
    text = (
        f"<cluster><fencedevices>{device('xvm')}</fencedevices>"
        f"<rm>{device('stray', ipport='1300')}</rm></cluster>"
    )
    conversion = convert(conf(tmp_path, text))
    assert listeners(conversion) == {"multicast": "1229"}
    assert any('"stray"' in line for line in conversion.not_converted)


def test_the_root_must_be_cluster(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"not a cluster\.conf"):
        convert(conf(tmp_path, "<config><fence_xvmd/></config>"))


# -- one listener instance per socket, none lost ---------------------------------------------


def test_devices_with_the_same_name_keep_their_own_instances(tmp_path: Path) -> None:
    text = guests(
        device("a", ipport="1300"),
        device("a", ipport="1301"),
        device("multicast", ipport="1302"),
        device("a b", ipport="1303"),
        device("a-b", ipport="1304"),
    )
    ports = listeners(convert(conf(tmp_path, text)))
    assert sorted(port or "" for port in ports.values()) == ["1300", "1301", "1302", "1303", "1304"]
    assert ports["multicast"] == "1300"


# -- empty values and values fence_virt.conf cannot hold --------------------------------------


@pytest.mark.parametrize("flag", ["-p", "-k", "-U", "-I"])
def test_an_empty_flag_value_is_refused(flag: str) -> None:
    conversion = convert(None, f"{flag} ''")
    assert len(conversion.refused) == 1, conversion.refused
    assert f"fence_xvmd {flag}: empty" in conversion.refused[0]


@pytest.mark.parametrize("attribute", ["port", "key_file", "uri", "interface", "hash"])
def test_an_empty_attribute_is_refused(attribute: str, tmp_path: Path) -> None:
    conversion = convert(conf(tmp_path, f'<cluster><fence_xvmd {attribute}=""/></cluster>'))
    assert len(conversion.refused) == 1, conversion.refused
    assert f"<fence_xvmd {attribute}=...>: empty" in conversion.refused[0]


@pytest.mark.parametrize("attribute", ["ipport", "key_file", "hash", "auth"])
def test_an_empty_device_argument_is_refused(attribute: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f'fencedevice "x" {attribute}=...: empty'):
        convert(conf(tmp_path, guests(device("x", **{attribute: ""}))))


def test_a_quote_in_a_value_is_refused_not_a_traceback(tmp_path: Path) -> None:
    text = '<cluster><fence_xvmd key_file="/etc/x&quot;;&#10;auth = &quot;none"/></cluster>'
    conversion = convert(conf(tmp_path, text))
    assert len(conversion.refused) == 1, conversion.refused
    assert "cannot be written in fence_virt.conf" in conversion.refused[0]
    assert "auth = " not in conversion.tree.dump()
    with pytest.raises(UserError, match=r"cannot be written in fence_virt\.conf"):
        convert(conf(tmp_path, guests(device("x", key_file="/a&quot;b"))))


def test_the_command_exits_1_on_an_unwritable_value(tmp_path: Path) -> None:
    path = conf(tmp_path, '<cluster><fence_xvmd interface=""/></cluster>')
    done = subprocess.run(
        [FENCE_VIRTD, "--upgrade-from", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("fence_virtd: not converted: <fence_xvmd interface=...>")


# -- findings stay one line each ---------------------------------------------------------------


def test_a_newline_in_a_name_cannot_add_lines_to_the_file(tmp_path: Path) -> None:
    """A device's name is quoted in comments and on stderr: a newline in it (``&#10;``) must
    not end the comment and put its rest into the configuration."""
    name = "x&#10;backends { libvirt { uri = &quot;xen:///&quot;; } }&#10;#"
    text = f"<cluster><fencedevices>{device('ok')}</fencedevices><rm>{device(name)}</rm></cluster>"
    path = conf(tmp_path, text)
    done = subprocess.run(
        [FENCE_VIRTD, "--upgrade-from", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert parse_text(done.stdout).get("backends/libvirt/@uri") == "qemu:///system"
    assert "xen:///" not in parse_text(done.stdout).dump()
    assert [line for line in done.stdout.splitlines() if "xen:///" in line] == [
        '# not converted: a <fencedevice "x\\nbackends { libvirt { uri = "xen:///"; } }\\n#"> '
        "not directly under <cluster><fencedevices>: not read by the cluster tools"
    ]
    refused = convert(conf(tmp_path, guests(device(name, colour="1"))))
    assert "xen:///" not in parse_text(refused.render()).dump()
    assert all("\n" not in line for line in refused.one_line(refused.refused))


def test_a_newline_in_a_flag_value_stays_in_the_comment() -> None:
    conversion = convert(None, "-L -k '/etc/a\nkey'")
    first, second = conversion.render().splitlines()[:2]
    assert first == "# converted from fence_xvmd -L -k '/etc/a\\nkey' by fence_virtd --xvmd-args"
    assert second.startswith("#")


# -- the group and its family, as the C tools read them ----------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        # args_init: PF_INET unless -i; ipv4_recv_sk cannot join an IPv6 group
        ("-a ff05::3:9", "fence_xvmd -a: ff05::3:9 is not ipv4 (fence_xvmd's default"),
        # args_finalize: with auto, a '.' anywhere makes it IPv4 (checked last)
        ("-i auto -a ::ffff:225.0.0.12", "::ffff:225.0.0.12 is not ipv4 (fence_xvmd -i auto"),
        # IP_ADD_MEMBERSHIP refuses a unicast address: fence_xvmd did not start
        ("-a 198.51.100.7", "198.51.100.7 is not a multicast group"),
        ("-i ipv6 -a ff05::3:1%eth0", "'ff05::3:1%eth0' is not an IP address"),
        ("-i auto -a nope", "'nope' is not an IP address"),
    ],
)
def test_a_group_fence_xvmd_could_not_join_is_refused(args: str, line: str) -> None:
    conversion = convert(None, args)
    assert len(conversion.refused) == 1, conversion.refused
    assert line in conversion.refused[0]


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"ip_family": "ipv4", "multicast_address": "ff05::3:1"}, "ff05::3:1 is not ipv4"),
        ({"ip_family": "ipv6", "multicast_address": "225.0.0.12"}, "225.0.0.12 is not ipv6"),
        ({"multicast_address": "::ffff:225.0.0.12"}, "is not ipv4"),
        ({"multicast_address": "198.51.100.7"}, "is not a multicast group"),
    ],
)
def test_a_device_group_fence_xvm_could_not_send_to_is_refused(
    attributes: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=message):
        convert(conf(tmp_path, guests(device("x", **attributes))))


# -- numbers are C's: ASCII digits ------------------------------------------------------------


@pytest.mark.parametrize("port", ["\u00b2", "\u0661\u0663\u0660\u0660", "\uff11\uff13\uff10\uff10"])
def test_a_port_in_other_digits_is_refused_not_converted(port: str, tmp_path: Path) -> None:
    """atoi reads ASCII digits only: fence_xvmd refused these (0); Python's isdigit/int
    took them (1300) or crashed ('²')."""
    conversion = convert(conf(tmp_path, f'<cluster><fence_xvmd port="{port}"/></cluster>'))
    assert len(conversion.refused) == 1, conversion.refused
    assert "is not a port fence_xvmd took" in conversion.refused[0]
    with pytest.raises(UserError, match="is not a port number"):
        convert(conf(tmp_path, guests(device("x", ipport=port))))


# -- a DOCTYPE: nothing fetched, nothing expanded, nothing defaulted ---------------------------


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE cluster [ <!ATTLIST fence_xvmd port CDATA "1300"> ]>',
        '<!DOCTYPE cluster [ <!ENTITY p "1300"> ]>',
        '<!DOCTYPE cluster [ <!ENTITY x SYSTEM "file:///etc/hostname"> ]>',
        '<!DOCTYPE cluster SYSTEM "http://198.51.100.1/cluster.dtd">',
        '<!DOCTYPE cluster [ <!ENTITY a "aaaaaaaaaa"> <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"> ]>',
    ],
)
def test_a_doctype_is_refused(doctype: str, tmp_path: Path) -> None:
    """cluster.conf never had a DTD; its declarations (a default attribute, an entity) could
    give values ccs may not have seen, so the file is refused before anything is expanded."""
    port = "&p;" if "ENTITY p" in doctype else "1229"
    text = f'<?xml version="1.0"?>{doctype}<cluster><fence_xvmd port="{port}"/></cluster>'
    with pytest.raises(UserError, match="DOCTYPE"):
        convert(conf(tmp_path, text))
