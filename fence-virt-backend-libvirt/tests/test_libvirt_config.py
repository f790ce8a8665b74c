"""The backends/libvirt block: URIs (repeated, numbered as in C), reboot_timeout, off at the
QEMU process's exit (which URIs, which pid directory), reboot_answer, and the availability
check that opens every URI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fence_virt.config import ConfigSection, parse_text
from fence_virt.errors import BackendError, ConfigError
from fence_virt_backend_libvirt.config import DEFAULT_REBOOT_TIMEOUT, load_settings
from fence_virt_libvirt import RebootAnswer


def settings(body: str):
    tree = parse_text(f"backends {{\n libvirt {{\n{body}\n }}\n}}\n", source="fv.conf")
    return load_settings(tree.node("backends/libvirt"))


def test_single_uri_and_default_timeout():
    loaded = settings('uri = "test:///default";')
    assert loaded.uris == ("test:///default",)
    assert loaded.reboot_timeout == DEFAULT_REBOOT_TIMEOUT


def test_repeated_uri_keys_then_numbered_ones_in_order():
    loaded = settings(
        'uri2 = "test:///c"; uri = "test:///a"; uri1 = "test:///b"; uri = "test:///a2";'
        ' reboot_timeout = "2.5";'
    )
    assert loaded.uris == ("test:///a", "test:///a2", "test:///b", "test:///c")
    assert loaded.reboot_timeout == 2.5


def test_the_last_of_a_repeated_numbered_key_wins_as_in_c():
    assert settings('uri = "test:///a"; uri1 = "x:///1"; uri1 = "test:///b";').uris == (
        "test:///a",
        "test:///b",
    )


def test_duplicate_uris_are_opened_once():
    assert settings('uri = "test:///a"; uri1 = "test:///a";').uris == ("test:///a",)


def test_missing_uri_is_an_error_with_file_and_line():
    with pytest.raises(ConfigError, match=r"^fv.conf:2: missing required key 'uri'"):
        settings('reboot_timeout = "3";')


def test_absent_block_is_an_error():
    with pytest.raises(ConfigError, match="missing required key 'uri' in backends/libvirt"):
        load_settings(None)


def test_a_gap_in_numbered_uris_is_an_error_naming_the_stray_key():
    with pytest.raises(ConfigError, match=r"fv.conf:5: uri3 .* uri2 is missing"):
        settings('uri = "test:///a";\nuri1 = "test:///b";\nuri3 = "test:///d";')


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_reboot_timeout_is_an_error(value):
    with pytest.raises(ConfigError, match="reboot_timeout"):
        settings(f'uri = "test:///default"; reboot_timeout = "{value}";')


def test_blank_uri_is_refused_not_opened_as_the_default_hypervisor():
    with pytest.raises(ConfigError, match="blank uri"):
        settings('uri = " ";')


def test_unknown_keys_warn_but_uri0_is_not_a_uri(caplog):
    loaded = settings('uri = "test:///default"; uri0 = "test:///x"; uir = "y";')
    assert loaded.uris == ("test:///default",)
    assert "unknown key 'uri0'" in caplog.text
    assert "did you mean 'uri'" in caplog.text


@pytest.fixture
def check(plugin_hooks):
    def run(body: str | None):
        tree = parse_text(f"backends {{ libvirt {{ {body} }} }}" if body is not None else "")
        section = ConfigSection("backends/libvirt", tree.node("backends/libvirt"), tree.source)
        return plugin_hooks().fence_virt_backend_check(section=section, config=tree)

    return run


def test_check_is_usable_when_every_uri_connects(check, node_uri):
    node = node_uri
    availability = check(f'uri = "test:///default"; uri1 = "{node}";')
    assert availability.usable
    assert availability.reason == f"connects to test:///default, {node}"


def test_check_names_the_uri_that_fails_and_why(check, tmp_path):
    missing = f"test+unix:///default?socket={tmp_path}/nothing-here"
    availability = check(f'uri = "test:///default"; uri1 = "{missing}";')
    assert not availability.usable
    assert availability.reason.startswith(f"cannot connect to {missing}: ")
    assert "nothing-here" in availability.reason


def test_check_without_a_block_says_what_is_missing(check):
    availability = check(None)
    assert not availability.usable
    assert "backends/libvirt" in availability.reason


def test_start_fails_only_when_no_uri_connects(tmp_path, start_backend):
    dead = f"test+unix:///default?socket={tmp_path}/none"
    with pytest.raises(BackendError, match="could not connect to any hypervisor"):
        start_backend(dead)
    assert start_backend(dead, "test:///default") is not None


def test_off_at_qemu_exit_is_on_by_default_for_local_qemu_uris_only():
    loaded = settings(
        'uri = "qemu:///system"; uri1 = "qemu+ssh://b/system"; uri2 = "test:///default";'
    )
    assert loaded.off_at_qemu_exit is True
    assert loaded.reboot_answer is RebootAnswer.RUNNING
    assert loaded.qemu_pid_dirs() == {"qemu:///system": Path("/run/libvirt/qemu")}


def test_the_pid_directory_override_and_the_switches():
    local = "qemu+unix:///system?socket=/r/sock"
    loaded = settings(
        f'uri = "{local}"; uri1 = "qemu+tcp://b/system";'
        ' qemu_pid_dir = "/r/run/qemu"; reboot_answer = "off";'
    )
    assert loaded.qemu_pid_dirs() == {local: Path("/r/run/qemu")}
    assert loaded.reboot_answer is RebootAnswer.OFF
    off = settings(f'uri = "{local}"; off_at_qemu_exit = "no"; reboot_answer = "Running";')
    assert off.qemu_pid_dirs() == {}
    assert off.reboot_answer is RebootAnswer.RUNNING


@pytest.mark.parametrize(
    ("body", "key"),
    [('reboot_answer = "later";', "reboot_answer"), ('off_at_qemu_exit = "maybe";', "off_at")],
)
def test_bad_switches_are_errors_at_their_line(body, key):
    with pytest.raises(ConfigError, match=rf"^fv.conf:4: .*{key}"):
        settings(f'uri = "qemu:///system";\n{body}')


def test_unknown_vm_is_fail_by_default_or_silent() -> None:
    from fence_virt_backend_libvirt.config import UnknownVm

    assert settings('uri = "test:///a";').unknown_vm is UnknownVm.FAIL
    assert settings('uri = "test:///a"; unknown_vm = "silent";').unknown_vm is UnknownVm.SILENT
    with pytest.raises(ConfigError, match=r"fv.conf:3: .*unknown_vm"):
        settings('uri = "test:///a"; unknown_vm = "quiet";')


def test_keeps_silent_only_for_a_vm_no_uri_has_and_only_when_silent() -> None:
    from fence_virt import Target
    from fence_virt_backend_libvirt.plugin import LibvirtBackend

    silent = LibvirtBackend(settings('uri = "test:///default"; unknown_vm = "silent";'))
    answering = LibvirtBackend(settings('uri = "test:///default";'))

    async def check() -> None:  # start() binds libvirt's events to the running loop
        for backend in (silent, answering):
            await backend.start()
        try:
            nosuch = Target(domain="nosuch", by_uuid=False, requester="198.51.100.1", seqno=1)
            here = Target(domain="test", by_uuid=False, requester="198.51.100.1", seqno=2)
            uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # test:///default's domain "test"
            by_uuid = Target(domain=uuid, by_uuid=True, requester="198.51.100.1", seqno=3)
            assert silent.keeps_silent(nosuch) is True
            assert silent.keeps_silent(here) is False
            assert silent.keeps_silent(by_uuid) is False
            assert answering.keeps_silent(nosuch) is False
        finally:
            for backend in (silent, answering):
                backend.stop()

    asyncio.run(check())
