"""The vmchannel plugin is the serial listener with ``mode = "vmchannel"`` as its default:
the same keys and checks (tested with the serial plugin), a different default device."""

from __future__ import annotations

from pathlib import Path

from fence_virt.config import parse_text
from fence_virt.plugins import PluginKind
from fence_virt.testing.drive import plug
from fence_virt_libvirt import ChannelMode, DeviceKind, GuestChannelListener
from fence_virt_listener_vmchannel import VmchannelListenerPlugin


def plugged(text: str):
    config = parse_text(text, source="vmchannel.conf")
    return plug(PluginKind.LISTENER, "vmchannel", VmchannelListenerPlugin, config)


def block(**values: str) -> str:
    lines = "".join(f'\t\t{key} = "{value}";\n' for key, value in values.items())
    return f"listeners {{\n\tvmchannel {{\n{lines}\t}}\n}}\n"


def create(text: str) -> GuestChannelListener:
    plugin = plugged(text)
    listener = plugin.hooks.listener_create(plugin.entry, plugin.section, plugin.config)
    assert isinstance(listener, GuestChannelListener)
    return listener


def test_channels_by_default(tmp_path: Path) -> None:
    assert VmchannelListenerPlugin.default_mode is ChannelMode.VMCHANNEL
    assert ChannelMode.VMCHANNEL.kind is DeviceKind.CHANNEL
    listener = create(block(uri="test:///default", path=str(tmp_path)))
    assert listener.describe() == f"vmchannel sockets in {tmp_path} of domains on test:///default"


def test_mode_serial_serves_serial_devices(tmp_path: Path) -> None:
    listener = create(block(uri="test:///default", path=str(tmp_path), mode="serial"))
    assert listener.describe().startswith("serial sockets in")


def test_check_says_why_not_in_its_own_words(tmp_path: Path) -> None:
    plugin = plugged(block(uri="test:///default", path=f"{tmp_path}/gone"))
    availability = plugin.hooks.listener_check(plugin.entry, plugin.section, plugin.config)
    assert not availability.usable
    assert availability.reason.startswith("vmchannel.conf:4: listeners/vmchannel: directory")
