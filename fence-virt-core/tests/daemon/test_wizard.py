"""``fence_virtd -c``, the configuration wizard, driven through a real pseudo-terminal as an
administrator types; the file it writes is read back by our parser and by the C wizard."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.config import load_file
from fence_virt_testinfra.c_suite import C_FENCE_VIRTD
from fence_virt_testinfra.ours import FENCE_VIRTD
from fence_virt_testinfra.terminal import Terminal


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for terminal in started:
        terminal.close()


def wizard(terminals: list[Terminal], config: Path) -> Terminal:
    terminal = Terminal(FENCE_VIRTD, "-c", "-f", str(config))
    terminals.append(terminal)
    return terminal


def test_a_new_file_from_the_defaults(terminals: list[Terminal], tmp_path: Path) -> None:
    config, key = tmp_path / "fence_virt.conf", tmp_path / "fence_xvm.key"
    term = wizard(terminals, config)
    listed = term.expect("Listener module [multicast]: ")
    text = listed.replace("\r\n", "\n")
    backends = text.split("Available backends:\n", 1)[1].split("Available listeners:\n", 1)
    assert "    libvirt 0.1.0\n" in backends[0]  # among every installed backend
    assert backends[1].startswith("    multicast 0.1.0\n")
    assert "memory" not in listed  # the test kit's plugins are never offered
    term.type("")
    term.answer("Multicast IP Address [225.0.0.12]: ", "")
    term.expect("Using ipv4 as family.")
    term.answer("Multicast IP Port [1229]: ", "70000")
    term.expect("70000 is not a port number (1-65535).")
    term.answer("Multicast IP Port [1229]: ", "1230")
    term.answer("Interface [none]: ", "lo")
    term.answer("Key File [/etc/cluster/fence_xvm.key]: ", "fence_xvm.key")
    term.answer("Use this value anyway [y/N]? ", "n")
    term.answer("Key File [fence_xvm.key]: ", str(key))
    term.answer("Backend module [libvirt]: ", "")
    term.answer("Libvirt URI [qemu:///system]: ", "test:///default")
    dump = term.expect("=== End Configuration ===")
    assert 'uri = "test:///default";' in dump
    term.answer(f"Replace {config} with the above [y/N]? ", "yes")
    assert term.wait() == 0
    assert config.stat().st_mode & 0o777 == 0o600
    tree = load_file(config)
    assert tree.get("fence_virtd/@listener") == "multicast"
    assert tree.get("fence_virtd/@backend") == "libvirt"
    assert tree.get("listeners/multicast/@address") == "225.0.0.12"
    assert tree.get("listeners/multicast/@family") == "ipv4"
    assert tree.get("listeners/multicast/@port") == "1230"
    assert tree.get("listeners/multicast/@interface") == "lo"
    assert tree.get("listeners/multicast/@key_file") == str(key)
    assert tree.get("backends/libvirt/@uri") == "test:///default"


def test_an_existing_file_gives_the_defaults_and_keeps_other_blocks(
    terminals: list[Terminal], tmp_path: Path
) -> None:
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        """fence_virtd { listener = "multicast"; backend = "libvirt"; }
listeners { multicast { address = "ff05::3:1"; port = "1300"; interface = "lo";
    key_file = "/etc/k"; } }
backends { libvirt { uri = "qemu:///session"; } }
groups { group { name = "c1"; ip = "198.51.100.11"; uuid = "vm1"; } }
extensions { recorder { file = "/tmp/r.jsonl"; } }
"""
    )
    config.chmod(0o600)
    term = wizard(terminals, config)
    term.answer("Listener module [multicast]: ", "")
    term.answer("Multicast IP Address [ff05::3:1]: ", "")
    term.expect("Using ipv6 as family.")
    term.answer("Multicast IP Port [1300]: ", "")
    term.answer("Interface [lo]: ", "none")
    term.answer("Key File [/etc/k]: ", "")
    term.answer("Backend module [libvirt]: ", "")
    term.answer("Libvirt URI [qemu:///session]: ", "qemu:///system")
    term.answer("with the above [y/N]? ", "y")
    assert term.wait() == 0
    tree = load_file(config)
    assert tree.get("listeners/multicast/@interface") is None
    assert tree.get("listeners/multicast/@family") == "ipv6"
    assert tree.get("backends/libvirt/@uri") == "qemu:///system"
    assert tree.get("groups/group/@uuid") == "vm1"
    assert tree.get("extensions/recorder/@file") == "/tmp/r.jsonl"


def test_declining_leaves_the_file_as_it_was(terminals: list[Terminal], tmp_path: Path) -> None:
    config = tmp_path / "fence_virt.conf"
    config.write_text("fence_virtd {\n")
    term = wizard(terminals, config)
    term.expect(f"Parsing of {config} failed.")
    term.answer("Start from scratch [y/N]? ", "")
    assert term.wait() == 1
    assert config.read_text() == "fence_virtd {\n"
    term = wizard(terminals, tmp_path / "new.conf")
    for prompt in ("module [multicast]: ", "Address", "Port", "Interface", "Key File"):
        term.answer(prompt, "")
    term.answer("Backend module [libvirt]: ", "")
    term.answer("Libvirt URI", "")
    term.answer("with the above [y/N]? ", "n")
    assert term.wait() == 0
    assert not (tmp_path / "new.conf").exists()


def test_the_c_wizard_reads_what_ours_wrote(
    terminals: list[Terminal], tmp_path: Path, c_suite: None
) -> None:
    config = tmp_path / "fence_virt.conf"
    term = wizard(terminals, config)
    term.answer("Listener module [multicast]: ", "")
    term.answer("Multicast IP Address [225.0.0.12]: ", "")
    term.answer("Multicast IP Port [1229]: ", "1231")
    term.answer("Interface [none]: ", "lo")
    term.answer("Key File", "/etc/cluster/other.key")
    term.answer("Backend module [libvirt]: ", "")
    term.answer("Libvirt URI [qemu:///system]: ", "")
    term.answer("with the above [y/N]? ", "y")
    assert term.wait() == 0
    # C's wizard parses the file and offers its values as defaults; it writes nothing ("n")
    answers = "\n" * 8 + "n\n"
    done = subprocess.run(
        [C_FENCE_VIRTD, "-c", "-f", str(config)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Parsing of" not in done.stdout, done.stdout
    for offered in (
        "Listener module [multicast]: ",
        "Multicast IP Port [1231]: ",
        "Interface [lo]: ",
        "Key File [/etc/cluster/other.key]: ",
        "Libvirt URI [qemu:///system]: ",
    ):
        assert offered in done.stdout


def answers_run(config: Path, *answers: str) -> subprocess.CompletedProcess[str]:
    """The non-interactive form: ``fence_virtd -c -f CONFIG --answer ID=VALUE ...``."""
    argv = [FENCE_VIRTD, "-c", "-f", str(config)]
    for answer in answers:
        argv += ["--answer", answer]
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )


def test_pages_c_lacks_and_further_instances(terminals: list[Terminal], tmp_path: Path) -> None:
    config = tmp_path / "fence_virt.conf"
    term = Terminal(FENCE_VIRTD, "-c", "--add-listeners", "-f", str(config))
    terminals.append(term)
    listed = term.expect("Listener module [multicast]: ").replace("\r\n", "\n")
    listeners = listed.split("Available listeners:\n", 1)[1]
    for plugin in ("serial", "tcp", "vmchannel", "vsock"):
        assert f"    {plugin} 0.1.0\n" in listeners
    term.type("serial")
    term.answer("Libvirt URI [qemu:///system]: ", "test:///default")
    term.answer("Socket directory [none]: ", "sockets")
    term.expect("The socket directory sockets is not an absolute path.")
    term.answer("Use this value anyway [y/N]? ", "n")
    term.answer("Socket directory [sockets]: ", str(tmp_path))
    term.answer("Mode (serial or vmchannel) [serial]: ", "tty")
    term.expect("tty is not one of serial, vmchannel.")
    term.answer("Mode (serial or vmchannel) [serial]: ", "")
    term.answer("Add another listener instance [y/N]? ", "y")
    term.answer("Instance name: ", "serial")
    term.expect("'serial' is configured already.")
    term.answer("Instance name: ", "guests b")
    term.expect("'guests b' is not a plain word.")
    term.answer("Instance name: ", "cluster-b")
    term.answer("Listener module [multicast]: ", "vsock")
    term.answer("vsock Port [1229]: ", "0")
    term.expect("0 is not a vsock port (1-4294967294).")
    term.answer("vsock Port [1229]: ", "4000")
    term.answer("Key File [/etc/cluster/fence_xvm.key]: ", "/etc/cluster/b.key")
    term.answer("Add another listener instance [y/N]? ", "yes")
    term.answer("Instance name: ", "vmchannel")
    term.answer("Listener module [vmchannel]: ", "")
    term.answer("Libvirt URI [qemu:///system]: ", "")
    term.answer("Socket directory [none]: ", "")
    term.answer("Mode (serial or vmchannel) [vmchannel]: ", "")
    term.answer("Add another listener instance [y/N]? ", "")
    term.answer("Backend module [libvirt]: ", "ovirt")
    term.answer("Engine API URL (https://HOST/ovirt-engine/api): ", "")
    term.expect("An answer is required.")
    term.answer("Engine API URL (https://HOST/ovirt-engine/api): ", "https://engine.example")
    term.answer("Engine user (USER@DOMAIN): ", "fence@internal")
    term.answer("Password file [/etc/cluster/ovirt.pass]: ", "")
    term.answer("Engine CA file [none]: ", "")
    term.answer("Only the VMs of cluster [none]: ", "guests")
    term.answer("with the above [y/N]? ", "y")
    assert term.wait() == 0
    tree = load_file(config)
    fence_virtd = next(node for node in tree.children if node.name == "fence_virtd")
    assert [v.value for v in fence_virtd.values if v.key == "listener"] == [
        "serial",
        "cluster-b",
        "vmchannel",
    ]
    assert tree.get("listeners/serial/@uri") == "test:///default"
    assert tree.get("listeners/serial/@path") == str(tmp_path)
    assert tree.get("listeners/serial/@mode") == "serial"
    assert tree.get("listeners/serial/@plugin") is None  # the instance's name is its plugin
    assert tree.get("listeners/cluster-b/@plugin") == "vsock"
    assert tree.get("listeners/cluster-b/@port") == "4000"
    assert tree.get("listeners/cluster-b/@key_file") == "/etc/cluster/b.key"
    assert tree.get("listeners/vmchannel/@mode") == "vmchannel"
    assert tree.get("listeners/vmchannel/@path") is None
    assert tree.get("fence_virtd/@backend") == "ovirt"
    assert tree.get("backends/ovirt/@url") == "https://engine.example"
    assert tree.get("backends/ovirt/@username") == "fence@internal"
    assert tree.get("backends/ovirt/@password_file") == "/etc/cluster/ovirt.pass"
    assert tree.get("backends/ovirt/@ca_file") is None
    assert tree.get("backends/ovirt/@cluster") == "guests"
    # our daemon accepts the layout: the check parses it and names all three instances
    checked = subprocess.run(
        [FENCE_VIRTD, "--check", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "listener serial, cluster-b, vmchannel, backend ovirt" in checked.stdout, checked


def test_answers_give_the_file_the_terminal_gives(
    terminals: list[Terminal], tmp_path: Path
) -> None:
    typed, given = tmp_path / "typed.conf", tmp_path / "given.conf"
    term = Terminal(FENCE_VIRTD, "-c", "--add-listeners", "-f", str(typed))
    terminals.append(term)
    term.answer("Listener module [multicast]: ", "")
    term.answer("Multicast IP Address [225.0.0.12]: ", "ff05::3:1")
    term.answer("Multicast IP Port [1229]: ", "1240")
    term.answer("Interface [none]: ", "lo")
    term.answer("Key File [/etc/cluster/fence_xvm.key]: ", "/etc/cluster/a.key")
    term.answer("Add another listener instance [y/N]? ", "y")
    term.answer("Instance name: ", "cluster-b")
    term.answer("Listener module [multicast]: ", "tcp")
    term.answer("TCP Listen IP Address [127.0.0.1]: ", "")
    term.answer("TCP Listen Port [1229]: ", "1241")
    term.answer("Key File [/etc/cluster/fence_xvm.key]: ", "/etc/cluster/b.key")
    term.answer("Add another listener instance [y/N]? ", "n")
    term.answer("Backend module [libvirt]: ", "cpg")
    term.answer("Libvirt URI [qemu:///system]: ", "")
    term.answer("VM naming/tracking mode (name or uuid) [uuid]: ", "name")
    term.answer("with the above [y/N]? ", "y")
    assert term.wait() == 0
    answers = (
        "listeners/multicast/address=ff05::3:1",
        "listeners/multicast/port=1240",
        "listeners/multicast/interface=lo",
        "listeners/multicast/key_file=/etc/cluster/a.key",
        "fence_virtd/listener=multicast",
        "fence_virtd/listener=cluster-b",
        "listeners/cluster-b/plugin=tcp",
        "listeners/cluster-b/port=1241",
        "listeners/cluster-b/key_file=/etc/cluster/b.key",
        "fence_virtd/backend=cpg",
        "backends/cpg/name_mode=name",
    )
    done = answers_run(given, *answers)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {given}\n"
    assert given.read_text() == typed.read_text()
    assert given.stat().st_mode & 0o777 == 0o600
    # run again on its own file with one answer: only that key changes
    again = answers_run(given, "listeners/cluster-b/port=1242")
    assert again.returncode == 0, again.stderr
    assert given.read_text() == typed.read_text().replace('"1241"', '"1242"')
    # the same answers again (configuration management's every run): the same file
    for config in (given, typed):
        rerun = answers_run(config, *answers)
        assert rerun.returncode == 0, rerun.stderr
    assert given.read_text() == typed.read_text()


def test_answers_that_would_be_asked_again_write_nothing(tmp_path: Path) -> None:
    config = tmp_path / "fence_virt.conf"
    for answers, message in (
        (["listeners/multicast/port=70000"], "70000 is not a port number (1-65535)."),
        (["listeners/multicast/prot=1230"], "--answer listeners/multicast/prot=1230: no question"),
        (["listeners/multicast/key_file=k.key"], "k.key is not an absolute path."),
        (["fence_virtd/backend=ovirt"], "backends/ovirt/url has no default"),
        (["port"], "expected ID=VALUE"),
    ):
        done = answers_run(config, *answers)
        assert done.returncode != 0, answers
        assert done.stderr.startswith("fence_virtd: "), done.stderr
        assert message in done.stderr
        assert not config.exists()
    config.write_text("fence_virtd {\n")
    done = answers_run(config, "listeners/multicast/port=1230")
    assert done.returncode != 0
    assert "fix or remove the file, then run again" in done.stderr
    assert config.read_text() == "fence_virtd {\n"


def test_the_c_wizard_reads_the_other_c_pages_ours_wrote(tmp_path: Path, c_suite: None) -> None:
    """Serial listener and cpg backend (C's pages too), written without a terminal."""
    config = tmp_path / "fence_virt.conf"
    done = answers_run(
        config,
        "fence_virtd/listener=serial",
        "listeners/serial/uri=qemu:///session",
        f"listeners/serial/path={tmp_path}",
        "listeners/serial/mode=vmchannel",
        "fence_virtd/backend=cpg",
        "backends/cpg/uri=qemu:///session",
    )
    assert done.returncode == 0, done.stderr
    c_run = subprocess.run(
        [C_FENCE_VIRTD, "-c", "-f", str(config)],
        input="\n" * 8 + "n\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Parsing of" not in c_run.stdout, c_run.stdout
    for offered in (
        "Listener module [serial]: ",
        "Libvirt URI [qemu:///session]: ",
        f"Socket directory [{tmp_path}]: ",
        "Mode (serial or vmchannel) [vmchannel]: ",
        "Backend module [cpg]: ",
        "VM naming/tracking mode (name or uuid) [uuid]: ",
    ):
        assert offered in c_run.stdout


def test_a_number_is_ascii_digits(tmp_path: Path) -> None:
    """C reads the file's numbers with atoi (ASCII digits): a superscript two crashed the
    wizard (Python's isdigit took it, int did not) and Arabic-Indic digits were written,
    a port C reads as 0."""
    config = tmp_path / "fence_virt.conf"
    for port in ("\u00b2", "\u0661\u0662\u0663\u0660"):
        done = answers_run(config, f"listeners/multicast/port={port}")
        assert done.returncode != 0, port
        assert f"{port} is not a port number (1-65535)." in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert not config.exists()


def test_the_libvirt_page_keeps_every_uri_of_the_block(tmp_path: Path) -> None:
    """Our libvirt backend serves several URIs (C's one); C's page asks one: the others a
    hand-written file has are kept when the page is answered again, and the first changes."""
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        'fence_virtd {\n\tlistener = "multicast";\n\tbackend = "libvirt";\n}\n'
        'backends {\n\tlibvirt {\n\t\turi = "qemu:///system";\n\t\turi = "lxc:///system";\n'
        "\t}\n}\n"
    )
    config.chmod(0o600)
    done = answers_run(config, "listeners/multicast/port=1231")
    assert done.returncode == 0, done.stderr
    libvirt = load_file(config).node("backends/libvirt")
    assert libvirt is not None
    assert libvirt.all_values("uri") == ("qemu:///system", "lxc:///system")
    done = answers_run(config, "backends/libvirt/uri=qemu:///session")
    assert done.returncode == 0, done.stderr
    libvirt = load_file(config).node("backends/libvirt")
    assert libvirt is not None
    assert libvirt.all_values("uri") == ("qemu:///session", "lxc:///system")
