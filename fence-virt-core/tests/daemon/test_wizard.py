"""``fence_virtd -c``, the configuration wizard, driven through a real pseudo-terminal as an
administrator types; the file it writes is read back by our parser and by the C wizard."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt.config import load_file
from fence_virt_testinfra.c_suite import C_FENCE_VIRTD
from fence_virt_testinfra.ours import FENCE_VIRTD


class Terminal:
    """A program on the slave side of a pty; the test reads and types on the master side."""

    def __init__(self, *argv: str) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.output = ""
        self._seen = 0

    def expect(self, text: str, timeout: float = 15) -> str:
        """Wait until ``text`` appears after what was expected before; the output up to it."""
        deadline = time.monotonic() + timeout
        while (found := self.output.find(text, self._seen)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not shown; the terminal shows:\n{self.output}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the program ended and closed the slave side
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not shown before the end:\n{self.output}")
                self.output += chunk.decode(errors="replace")
        before = self.output[self._seen : found]
        self._seen = found + len(text)
        return before

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def answer(self, prompt: str, line: str) -> None:
        self.expect(prompt)
        self.type(line)

    def wait(self, timeout: float = 15) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


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
