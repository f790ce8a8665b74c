"""The listeners/multicast block: C's keys and defaults, strict checks with file:line errors,
the key file rules, and the plugin's two hooks as core calls them."""

from __future__ import annotations

import logging
from ipaddress import ip_address
from pathlib import Path

import pytest

from fence_virt.config import ConfigNode, ConfigSection, ConfigTree, parse_text
from fence_virt.errors import ConfigError, UserError
from fence_virt.protocol import HashType
from fence_virt_listener_multicast.listener import MulticastListener
from fence_virt_listener_multicast.plugin import MulticastListenerPlugin
from fence_virt_listener_multicast.settings import Family, resolve_settings


def block(body: str, source: str = "/etc/fence_virt.conf"):
    tree = parse_text(f"listeners {{\n\tmulticast {{\n{body}\t}}\n}}\n", source=source)
    return tree, tree.node("listeners/multicast")


def section(tree: ConfigTree, node: ConfigNode | None) -> ConfigSection:
    """The block as the daemon hands it to the plugin's hooks."""
    return ConfigSection("listeners/multicast", node, tree.source)


def test_defaults_are_those_of_c() -> None:
    settings = resolve_settings(ConfigSection("listeners/multicast", None, "x.conf"))
    assert settings.key_file == Path("/etc/cluster/fence_xvm.key")
    assert settings.hash is HashType.SHA256
    assert settings.auth is HashType.SHA256
    assert settings.family is Family.IPV4
    assert settings.group == ip_address("225.0.0.12")
    assert settings.port == 1229
    assert settings.interface is None
    assert settings.ifindex == 0
    assert (settings.connect_timeout, settings.io_timeout) == (5.0, 10.0)


def test_a_c_written_block_loads() -> None:
    tree, node = block(
        '\t\tkey_file = "/k";\n\t\taddress = "225.0.0.13";\n\t\tinterface = "lo";\n'
        '\t\tport = "1230";\n\t\tfamily = "IPv4";\n\t\thash = "SHA1";\n\t\tauth = "sha512";\n'
    )
    settings = resolve_settings(section(tree, node))
    assert settings.key_file == Path("/k")
    assert settings.group == ip_address("225.0.0.13")
    assert settings.port == 1230
    assert (settings.hash, settings.auth) == (HashType.SHA1, HashType.SHA512)
    assert settings.interface == "lo"
    assert settings.ifindex == 1
    assert settings.describe() == "multicast 225.0.0.13:1230 on lo"


def test_ipv6_family_defaults_to_the_ipv6_group() -> None:
    tree, node = block('\t\tfamily = "ipv6";\n')
    settings = resolve_settings(section(tree, node))
    assert settings.group == ip_address("ff05::3:1")
    assert settings.describe() == "multicast [ff05::3:1]:1229 on any interface"


def test_family_follows_the_address_when_not_given() -> None:
    tree, node = block('\t\taddress = "ff05::3:9";\n')
    assert resolve_settings(section(tree, node)).family is Family.IPV6


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ('\t\tfamily = "ipv4";\n\t\taddress = "ff05::3:1";\n', 4, "not an ipv4 address"),
        ('\t\taddress = "192.0.2.1";\n', 3, "not a multicast group"),
        ('\t\taddress = "example.com";\n', 3, "not an IP address"),
        ('\t\tinterface = "nosuch0";\n', 3, "no network interface named 'nosuch0'"),
        ('\t\tport = "0";\n', 3, "'port' in listeners/multicast: expected a number from 1 to"),
        ('\t\tport = "65536";\n', 3, "'port' in listeners/multicast: expected a number from 1"),
        ('\t\tport = "12ab";\n', 3, "bad value"),
        ('\t\thash = "md5";\n', 3, "unknown hash type"),
        ('\t\tauth = "sha3";\n', 3, "unknown hash type"),
        ('\t\tfamily = "auto";\n', 3, "expected ipv4 or ipv6"),
        ('\t\tmax_requests = "0";\n', 3, "'max_requests' in listeners/multicast: expected a"),
        ('\t\tio_timeout = "0";\n', 3, "'io_timeout' in listeners/multicast: expected a number"),
    ],
)
def test_bad_values_name_file_and_line(body: str, line: int, words: str) -> None:
    tree, node = block(body)
    with pytest.raises(ConfigError) as caught:
        resolve_settings(section(tree, node))
    message = str(caught.value)
    assert message.startswith(f"/etc/fence_virt.conf:{line}: ")
    assert words in message


def test_unknown_interface_makes_check_say_no_and_create_fail(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"secret")
    key.chmod(0o600)
    tree, node = block(f'\t\tkey_file = "{key}";\n\t\tinterface = "nosuch0";\n')
    plugin = MulticastListenerPlugin()
    availability = plugin.fence_virt_listener_check(section(tree, node))
    assert not availability.usable
    assert "no network interface named 'nosuch0'" in availability.reason
    with pytest.raises(ConfigError, match="nosuch0"):
        plugin.fence_virt_listener_create(section(tree, node))


def test_check_needs_a_readable_key_and_changes_nothing(tmp_path: Path) -> None:
    key = tmp_path / "k"
    tree, node = block(f'\t\tkey_file = "{key}";\n\t\tinterface = "lo";\n')
    plugin = MulticastListenerPlugin()
    missing = plugin.fence_virt_listener_check(section(tree, node))
    assert not missing.usable
    assert str(key) in missing.reason
    assert "No such file" in missing.reason
    key.write_bytes(b"secret")
    key.chmod(0o644)
    present = plugin.fence_virt_listener_check(section(tree, node))
    assert present.usable
    assert present.reason == f"multicast 225.0.0.12:1229 on lo, key file {key}"
    assert key.stat().st_mode & 0o777 == 0o644


def test_create_refuses_a_missing_key_file_naming_it(tmp_path: Path) -> None:
    key = tmp_path / "absent.key"
    tree, node = block(f'\t\tkey_file = "{key}";\n')
    with pytest.raises(UserError, match=f"key file {key}: No such file"):
        MulticastListenerPlugin().fence_virt_listener_create(section(tree, node))


def test_create_tightens_an_insecure_key_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"secret\n")
    key.chmod(0o644)
    tree, node = block(f'\t\tkey_file = "{key}";\n\t\tinterface = "lo";\n')
    with caplog.at_level(logging.WARNING):
        listener = MulticastListenerPlugin().fence_virt_listener_create(section(tree, node))
    assert isinstance(listener, MulticastListener)
    assert key.stat().st_mode & 0o777 == 0o600
    assert f"insecure permissions on key file {key}: changing from 0644 to 0600" in caplog.text
    assert listener.describe() == "multicast 225.0.0.12:1229 on lo (ipv4)"


def test_unauthenticated_modes_are_loudly_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"")
    key.chmod(0o600)
    tree, node = block(f'\t\tkey_file = "{key}";\n\t\thash = "none";\n\t\tauth = "none";\n')
    with caplog.at_level(logging.WARNING):
        MulticastListenerPlugin().fence_virt_listener_create(section(tree, node))
    assert "hash = none accepts unsigned requests" in caplog.text
    assert "auth = none skips the challenge" in caplog.text


def test_protocol_v2_keys() -> None:
    from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, ProtocolMode

    default = resolve_settings(ConfigSection("listeners/multicast", None, "x.conf"))
    assert (default.protocol, default.v2_window) == (ProtocolMode.C, DEFAULT_V2_WINDOW)
    settings = resolve_settings(section(*block('\t\tprotocol = "v2";\n\t\tv2_window = "3";\n')))
    assert (settings.protocol, settings.v2_window) == (ProtocolMode.V2, 3.0)
    with pytest.raises(ConfigError, match=r"fence_virt.conf:5: .*must be at most half"):
        resolve_settings(
            section(
                *block('\t\treplay_window = "10";\n\t\tprotocol = "v2";\n\t\tv2_window = "6";\n')
            )
        )


def test_same_address_treats_an_ipv4_mapped_address_as_its_ipv4() -> None:
    from fence_virt_listener_multicast.localguests import same_address

    assert same_address("::ffff:192.168.122.3", "192.168.122.3")
    assert same_address("fe80::1", "FE80::0001")
    assert not same_address("192.168.122.3", "192.168.122.4")
    assert not same_address("not an address", "192.168.122.3")
