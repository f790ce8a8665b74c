"""The listeners/vsock block, the plugin's hooks, and the socket it binds.

The socket tests create, bind and listen real ``AF_VSOCK`` sockets and never connect (see
conftest: a vsock connect here would leave the machine)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from fence_virt.config import ConfigSection, parse_text
from fence_virt.errors import ConfigError, UserError
from fence_virt.listening import stream_policy
from fence_virt.protocol import HashType
from fence_virt_listener_vsock import sockets
from fence_virt_listener_vsock.listener import VsockListener
from fence_virt_listener_vsock.plugin import VsockListenerPlugin
from fence_virt_listener_vsock.settings import resolve_settings
from fence_virt_listener_vsock.sockets import open_listening_socket, peer_cid

SOURCE = "/etc/fence_virt.conf"


def section(body: str, name: str = "vsock") -> ConfigSection:
    tree = parse_text(f"listeners {{\n\t{name} {{\n{body}\t}}\n}}\n", source=SOURCE)
    return ConfigSection(f"listeners/{name}", tree.node(f"listeners/{name}"), tree.source)


def key_at(path: Path, data: bytes = b"secret\n", mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_defaults_are_those_of_c() -> None:
    settings = resolve_settings(ConfigSection("listeners/vsock", None, "x.conf"))
    assert settings.key_file == Path("/etc/cluster/fence_xvm.key")
    assert (settings.hash, settings.auth) == (HashType.SHA256, HashType.SHA256)
    assert settings.port == 1229
    assert settings.max_connections == 128
    assert (settings.request_timeout, settings.io_timeout) == (1.0, 10.0)
    assert settings.name == "vsock"
    assert settings.describe() == "vsock port 1229 on any CID"


def test_a_c_written_block_loads() -> None:
    """The keys C's vsock listener reads (reference recipes §3d)."""
    settings = resolve_settings(
        section('\t\tkey_file = "/k";\n\t\tport = "4294967294";\n\t\thash = "sha512";\n'),
    )
    assert (settings.key_file, settings.port, settings.hash) == (
        Path("/k"),
        4294967294,
        HashType.SHA512,
    )
    policy = stream_policy(settings, b"k")
    assert (policy.key, policy.hash, policy.auth) == (b"k", HashType.SHA512, HashType.SHA256)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('\t\tport = "0";\n', "'port' in listeners/vsock: expected a number from 1 to 4294967294"),
        ('\t\tport = "4294967295";\n', "expected a number from 1 to 4294967294"),
        ('\t\tport = "x";\n', "bad value"),
        ('\t\thash = "md5";\n', "unknown hash type"),
        ('\t\tmax_connections = "0";\n', "'max_connections' in listeners/vsock: expected a"),
        ('\t\trequest_timeout = "0";\n', "'request_timeout' in listeners/vsock: expected a"),
    ],
)
def test_bad_values_name_file_and_line(body: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(section(body))
    assert str(caught.value).startswith(f"{SOURCE}:3: ")
    assert words in str(caught.value)


def test_check_says_why_the_listener_cannot_run(tmp_path: Path, monkeypatch) -> None:
    plugin = VsockListenerPlugin()
    key = tmp_path / "k"
    missing = plugin.fence_virt_listener_check(section(f'\t\tkey_file = "{key}";\n'))
    assert not missing.usable
    assert f"key file {key}: No such file" in missing.reason
    key_at(key)
    if sockets.vsock_problem() is None:
        present = plugin.fence_virt_listener_check(section(f'\t\tkey_file = "{key}";\n'))
        assert (present.usable, present.reason) == (
            True,
            f"vsock port 1229 on any CID, key file {key}",
        )
    # A Python without AF_VSOCK cannot be had here: the attribute is removed for this check.
    monkeypatch.delattr(socket, "AF_VSOCK")
    absent = plugin.fence_virt_listener_check(section(f'\t\tkey_file = "{key}";\n'))
    assert (absent.usable, absent.reason) == (False, "this Python has no AF_VSOCK support")
    bad = plugin.fence_virt_listener_check(section('\t\tport = "0";\n'))
    assert not bad.usable
    assert bad.reason.startswith(f"{SOURCE}:3: ")


def test_create_needs_a_usable_key_and_warns_on_the_instance_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = VsockListenerPlugin()
    absent = tmp_path / "absent"
    with pytest.raises(UserError, match=f"key file {absent}: No such file"):
        plugin.fence_virt_listener_create(section(f'\t\tkey_file = "{absent}";\n'))
    key = key_at(tmp_path / "k", b"", mode=0o644)
    body = f'\t\tkey_file = "{key}";\n\t\thash = "none";\n\t\tauth = "none";\n'
    with caplog.at_level(logging.WARNING):
        listener = plugin.fence_virt_listener_create(section(body, name="guests"))
    assert isinstance(listener, VsockListener)
    assert key.stat().st_mode & 0o777 == 0o600
    warnings = [r.getMessage() for r in caplog.records if r.name == "fence_virt.listener.guests"]
    assert warnings == [
        "listeners/guests: hash = none accepts unsigned requests from anyone",
        "listeners/guests: auth = none skips the challenge/response exchange",
    ]


def test_the_listening_socket_binds_every_cid(vsock_port: int) -> None:
    settings = resolve_settings(section(f'\t\tport = "{vsock_port}";\n'))
    sock = open_listening_socket(settings)
    try:
        assert sock.family == socket.AF_VSOCK
        assert sock.getsockname() == (socket.VMADDR_CID_ANY, vsock_port)
        assert not sock.getblocking()
        with pytest.raises(UserError, match=f"cannot listen on vsock port {vsock_port}: Address"):
            open_listening_socket(settings)
    finally:
        sock.close()


def test_the_requester_is_the_cid_in_decimal() -> None:
    assert peer_cid((3, 1025)) == "3"
    assert peer_cid((4294967295, 1)) == "4294967295"


def test_protocol_v2_keys() -> None:
    from fence_virt.protocol.v2 import ProtocolMode

    settings = resolve_settings(section('\t\tprotocol = "both";\n\t\tv2_window = "7";\n'))
    policy = stream_policy(settings, b"key")
    assert (policy.protocol, policy.v2_window) == (ProtocolMode.BOTH, 7.0)
    with pytest.raises(ConfigError, match="must be at most half"):
        resolve_settings(section('\t\tv2_window = "301";\n'))
