"""The listeners/tcp block: C's keys and defaults, strict checks with file:line errors, and
the plugin's two hooks as core calls them (the check says why the listener cannot run).

Name resolution and the check's trial bind run inside a test namespace holding only ``lo``,
so a lookup of a name that does not exist cannot leave the machine."""

from __future__ import annotations

import logging
from ipaddress import ip_address
from pathlib import Path

import pytest

from fence_virt.config import ConfigSection, parse_text
from fence_virt.errors import ConfigError, UserError
from fence_virt.listening import stream_policy
from fence_virt.protocol import HashType
from fence_virt_listener_tcp.listener import TcpListener
from fence_virt_listener_tcp.plugin import TcpListenerPlugin
from fence_virt_listener_tcp.settings import Family, resolve_settings
from fence_virt_listener_tcp.sockets import peer_ip

SOURCE = "/etc/fence_virt.conf"


def section(body: str, name: str = "tcp") -> ConfigSection:
    """The block as the daemon hands it to the plugin's hooks."""
    tree = parse_text(f"listeners {{\n\t{name} {{\n{body}\t}}\n}}\n", source=SOURCE)
    return ConfigSection(f"listeners/{name}", tree.node(f"listeners/{name}"), tree.source)


def key_at(path: Path, data: bytes = b"secret\n", mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_defaults_are_those_of_c() -> None:
    settings = resolve_settings(ConfigSection("listeners/tcp", None, "x.conf"))
    assert settings.key_file == Path("/etc/cluster/fence_xvm.key")
    assert (settings.hash, settings.auth) == (HashType.SHA256, HashType.SHA256)
    assert settings.family is Family.IPV4
    assert settings.address == ip_address("127.0.0.1")
    assert settings.port == 1229
    assert settings.max_connections == 128
    assert (settings.request_timeout, settings.io_timeout) == (1.0, 10.0)
    assert settings.describe() == "tcp 127.0.0.1:1229"


def test_a_c_written_block_loads() -> None:
    """The recipe's block (reference recipes §3c), with C's spellings."""
    settings = resolve_settings(
        section(
            '\t\tkey_file = "/k";\n\t\taddress = "198.51.100.1";\n\t\tport = "1230";\n'
            '\t\tfamily = "IPv4";\n\t\thash = "SHA1";\n\t\tauth = "sha512";\n'
        )
    )
    assert settings.key_file == Path("/k")
    assert settings.address == ip_address("198.51.100.1")
    assert settings.port == 1230
    assert (settings.hash, settings.auth) == (HashType.SHA1, HashType.SHA512)
    assert settings.describe() == "tcp 198.51.100.1:1230"


def test_ipv6_family_defaults_to_the_ipv6_loopback() -> None:
    settings = resolve_settings(section('\t\tfamily = "ipv6";\n'))
    assert settings.address == ip_address("::1")
    assert settings.describe() == "tcp [::1]:1229"


def test_family_follows_the_address_when_not_given() -> None:
    settings = resolve_settings(section('\t\taddress = "2001:db8::1";\n'))
    assert settings.family is Family.IPV6


def test_ours_max_connections_and_timeouts() -> None:
    settings = resolve_settings(
        section('\t\tmax_connections = "4";\n\t\trequest_timeout = "0.5";\n\t\tio_timeout = "3";\n')
    )
    assert (settings.max_connections, settings.request_timeout, settings.io_timeout) == (4, 0.5, 3)
    policy = stream_policy(settings, b"key")
    assert (policy.key, policy.request_timeout, policy.io_timeout) == (b"key", 0.5, 3.0)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ('\t\tfamily = "ipv4";\n\t\taddress = "::1";\n', 4, "address ::1 is not an ipv4 address"),
        ('\t\tport = "0";\n', 3, "'port' in listeners/tcp: expected a number from 1 to 65535"),
        ('\t\tport = "65536";\n', 3, "'port' in listeners/tcp: expected a number from 1 to"),
        ('\t\tport = "12ab";\n', 3, "bad value"),
        ('\t\thash = "md5";\n', 3, "unknown hash type"),
        ('\t\tauth = "sha3";\n', 3, "unknown hash type"),
        ('\t\tfamily = "auto";\n', 3, "'family' in listeners/tcp: expected one of ipv4, ipv6"),
        ('\t\tmax_connections = "0";\n', 3, "'max_connections' in listeners/tcp: expected a"),
        ('\t\trequest_timeout = "0";\n', 3, "'request_timeout' in listeners/tcp: expected a"),
        ('\t\tio_timeout = "-1";\n', 3, "'io_timeout' in listeners/tcp: expected a number"),
    ],
)
def test_bad_values_name_file_and_line(body: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(section(body))
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}:{line}: "), message
    assert words in message


@pytest.mark.netns
def test_a_name_is_resolved_for_the_family(ns, netns_call) -> None:
    """C resolves ``address`` with getaddrinfo for the family; so do we (``localhost``
    comes from /etc/hosts)."""
    v4 = netns_call(ns, lambda: resolve_settings(section('\t\taddress = "localhost";\n')))
    assert v4.address == ip_address("127.0.0.1")


@pytest.mark.netns
def test_a_name_that_does_not_resolve_is_an_error_at_its_line(ns, netns_call) -> None:
    def resolve() -> object:
        return resolve_settings(section('\t\taddress = "no-such-host.invalid";\n'))

    with pytest.raises(ConfigError) as caught:
        netns_call(ns, resolve)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}:3: ")
    assert "'no-such-host.invalid' is neither an IP address nor an ipv4 name" in message


@pytest.mark.netns
def test_check_says_why_the_listener_cannot_run(ns, netns_call, tmp_path: Path) -> None:
    plugin = TcpListenerPlugin()
    key = tmp_path / "k"

    def check(body: str) -> tuple[bool, str]:
        availability = netns_call(ns, lambda: plugin.fence_virt_listener_check(section(body)))
        return availability.usable, availability.reason

    usable, reason = check(f'\t\tkey_file = "{key}";\n')
    assert not usable
    assert f"key file {key}: No such file" in reason
    key_at(key, mode=0o644)
    assert check(f'\t\tkey_file = "{key}";\n') == (True, f"tcp 127.0.0.1:1229, key file {key}")
    assert key.stat().st_mode & 0o777 == 0o644, "the check changed the key file"
    usable, reason = check(f'\t\tkey_file = "{key}";\n\t\taddress = "198.51.100.99";\n')
    assert not usable
    assert reason == "cannot listen on TCP 198.51.100.99:1229: Cannot assign requested address"
    usable, reason = check(f'\t\tkey_file = "{key}";\n\t\tport = "none";\n')
    assert not usable
    assert reason.startswith(f"{SOURCE}:4: ")


@pytest.mark.netns
def test_check_passes_while_a_daemon_holds_the_port(ns, netns_call, tmp_path: Path) -> None:
    """The trial bind uses an ephemeral port: a running daemon does not make it say no."""
    import socket

    key = key_at(tmp_path / "k")

    def check_with_port_taken() -> bool:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 1229))
            holder.listen()
            return (
                TcpListenerPlugin()
                .fence_virt_listener_check(section(f'\t\tkey_file = "{key}";\n'))
                .usable
            )

    assert netns_call(ns, check_with_port_taken)


def test_create_refuses_a_missing_or_empty_key_file(tmp_path: Path) -> None:
    absent = tmp_path / "absent.key"
    with pytest.raises(UserError, match=f"key file {absent}: No such file"):
        TcpListenerPlugin().fence_virt_listener_create(section(f'\t\tkey_file = "{absent}";\n'))
    empty = key_at(tmp_path / "empty.key", b"")
    with pytest.raises(UserError, match="is empty"):
        TcpListenerPlugin().fence_virt_listener_create(section(f'\t\tkey_file = "{empty}";\n'))


def test_create_tightens_an_insecure_key_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = key_at(tmp_path / "k", mode=0o644)
    with caplog.at_level(logging.WARNING):
        listener = TcpListenerPlugin().fence_virt_listener_create(
            section(f'\t\tkey_file = "{key}";\n')
        )
    assert isinstance(listener, TcpListener)
    assert key.stat().st_mode & 0o777 == 0o600
    assert f"insecure permissions on key file {key}: changing from 0644 to 0600" in caplog.text
    assert listener.describe() == "tcp 127.0.0.1:1229"


def test_unauthenticated_modes_are_loudly_allowed_on_the_instance_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = key_at(tmp_path / "k", b"")
    body = f'\t\tkey_file = "{key}";\n\t\thash = "none";\n\t\tauth = "none";\n'
    with caplog.at_level(logging.WARNING, logger="fence_virt.listener.guests"):
        TcpListenerPlugin().fence_virt_listener_create(section(body, name="guests"))
    lines = [r.getMessage() for r in caplog.records if r.name == "fence_virt.listener.guests"]
    assert lines == [
        "listeners/guests: hash = none accepts unsigned requests from anyone",
        "listeners/guests: auth = none skips the challenge/response exchange",
    ]


@pytest.mark.parametrize(
    ("address", "requester"),
    [
        (("198.51.100.11", 40000), "198.51.100.11"),
        (("2001:db8::11", 40000, 0, 0), "2001:db8::11"),
        (("fe80::11%veth0", 40000, 0, 7), "fe80::11%veth0"),
    ],
)
def test_the_requester_is_the_peer_s_numeric_address(address: tuple, requester: str) -> None:
    assert peer_ip(address) == requester


def test_protocol_v2_keys() -> None:
    from fence_virt.protocol.v2 import DEFAULT_V2_WINDOW, ProtocolMode

    default = resolve_settings(section(""))
    assert (default.protocol, default.v2_window) == (ProtocolMode.C, DEFAULT_V2_WINDOW)
    settings = resolve_settings(section('\t\tprotocol = "V2";\n\t\tv2_window = "5";\n'))
    assert (settings.protocol, settings.v2_window) == (ProtocolMode.V2, 5.0)
    policy = stream_policy(settings, b"key")
    assert (policy.protocol, policy.v2_window) == (ProtocolMode.V2, 5.0)
    assert resolve_settings(section('\t\tprotocol = "both";\n')).protocol is ProtocolMode.BOTH
    with pytest.raises(ConfigError, match=r"fence_virt.conf:4: .*must be at most half"):
        resolve_settings(section('\t\treplay_window = "20";\n\t\tv2_window = "11";\n'))
    with pytest.raises(ConfigError, match="protocol"):
        resolve_settings(section('\t\tprotocol = "v3";\n'))
