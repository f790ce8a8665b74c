"""The serial listener's block (C's keys uri, path, mode; key_file accepted and unused) and
what ``fence_virt_listener_check`` says, through core's plugin facade as the daemon calls it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.errors import ConfigError
from fence_virt.plugins import PluginKind
from fence_virt.testing.drive import plug
from fence_virt_libvirt import ChannelMode, GuestChannelListener, load_channel_settings
from fence_virt_listener_serial import SerialListenerPlugin

SOURCE = "serial.conf"


def section_of(text: str, name: str = "serial"):
    config = parse_text(text, source=SOURCE)
    return plug(PluginKind.LISTENER, name, SerialListenerPlugin, config)


def block(**values: str) -> str:
    lines = "".join(f'\t\t{key} = "{value}";\n' for key, value in values.items())
    return f"listeners {{\n\tserial {{\n{lines}\t}}\n}}\n"


def settings(text: str):
    return load_channel_settings(section_of(text).section, ChannelMode.SERIAL)


def check(text: str):
    plugged = section_of(text)
    return plugged.hooks.listener_check(plugged.entry, plugged.section, plugged.config)


def create(text: str):
    plugged = section_of(text)
    return plugged.hooks.listener_create(plugged.entry, plugged.section, plugged.config)


def test_c_keys_and_defaults(tmp_path: Path) -> None:
    got = settings(block(uri="test:///default", path=str(tmp_path)))
    assert (got.name, got.uri, got.directory, got.mode) == (
        "serial",
        "test:///default",
        str(tmp_path),
        ChannelMode.SERIAL,
    )
    bare = settings(block())
    assert (bare.uri, bare.directory) == ("", None)  # libvirt's default URI, any path


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("serial", ChannelMode.SERIAL),
        ("vmchannel", ChannelMode.VMCHANNEL),
        ("VMChannel", ChannelMode.VMCHANNEL),
        ("0", ChannelMode.SERIAL),  # C: atoi, nonzero is vmchannel, negative is serial
        ("1", ChannelMode.VMCHANNEL),
        ("7", ChannelMode.VMCHANNEL),
        ("-3", ChannelMode.SERIAL),
    ],
)
def test_mode_as_c_reads_it(text: str, mode: ChannelMode) -> None:
    assert settings(block(mode=text)).mode is mode


def test_an_unknown_mode_word_is_an_error_at_its_line() -> None:
    """C reads "vmchanel" with atoi as 0: serial, silently; here it is an error."""
    with pytest.raises(ConfigError, match=r"^serial\.conf:4: .*expected serial or vmchannel"):
        settings(block(uri="test:///default", mode="vmchanel"))


def test_a_missing_directory_is_an_error_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^serial\.conf:3: .*{tmp_path}/nowhere does not exist"):
        settings(block(path=f"{tmp_path}/nowhere"))


@pytest.mark.parametrize("path", ["/", "///", "/a"])
def test_a_directory_c_can_never_match_is_an_error(path: str) -> None:
    with pytest.raises(ConfigError, match=r"^serial\.conf:3: "):
        settings(block(path=path))


def test_leading_slashes_do_not_matter_as_in_c(tmp_path: Path) -> None:
    relative = str(tmp_path).lstrip("/")
    assert settings(block(path=relative)).directory == relative


def test_key_file_is_accepted_without_a_warning(tmp_path: Path, caplog) -> None:
    """C's daemon refuses to start unless the key file exists, though serial does not use
    it; a C config carries the key, so it loads here, with no warning, file or no file."""
    got = settings(block(path=str(tmp_path), key_file=f"{tmp_path}/absent.key"))
    assert got.directory == str(tmp_path)
    assert "unknown key" not in caplog.text


def test_an_unknown_key_is_warned_with_its_line(tmp_path: Path, caplog) -> None:
    settings(block(path=str(tmp_path), hash="sha256"))
    assert "serial.conf:4" in caplog.text
    assert "hash" in caplog.text


def test_create_builds_a_listener_and_warns_without_a_path(caplog) -> None:
    caplog.set_level(logging.WARNING)
    listener = create(block(uri="test:///default"))
    assert isinstance(listener, GuestChannelListener)
    assert listener.describe() == "serial sockets anywhere of domains on test:///default"
    assert "no path: the serial sockets of every domain are used" in caplog.text


def test_check_without_a_block_says_what_is_missing() -> None:
    availability = check('fence_virtd {\n\tbackend = "libvirt";\n}\n')
    assert not availability.usable
    assert availability.reason == (
        "no listeners/serial block (set path to the directory of the guests' sockets)"
    )


def test_check_names_a_missing_directory(tmp_path: Path) -> None:
    availability = check(block(uri="test:///default", path=f"{tmp_path}/gone"))
    assert not availability.usable
    assert f"directory {tmp_path}/gone does not exist" in availability.reason


def test_check_names_an_unreachable_libvirt(tmp_path: Path) -> None:
    uri = f"test+unix:///default?socket={tmp_path}/no-libvirtd"
    availability = check(block(uri=uri, path=str(tmp_path)))
    assert not availability.usable
    assert availability.reason.startswith(f"cannot connect to {uri}")


def test_check_of_a_working_block(tmp_path: Path) -> None:
    availability = check(block(uri="test:///default", path=str(tmp_path)))
    assert availability.usable
    assert availability.reason == f"serial sockets in {tmp_path} of domains on test:///default"
