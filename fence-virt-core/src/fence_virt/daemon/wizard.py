"""``fence_virtd -c``: the C daemon's configuration wizard (c-suite-spec §5.5).

The same questions, defaults, prompts and explanations as C, in C's order: the listener
module (multicast: group address, port, interface, key file; tcp: address, port, key file),
then the backend module (libvirt: URI). Prompts read ``TEXT [default]: `` and an empty
answer keeps the default; yes/no questions read ``[y/N]? `` and the first letter decides
(end of input: the default). Defaults come from the file being edited, else C's.

Differences from C: the "Module search path" question is not asked -- plugins are entry
points, so the installed ones are listed instead (``module_path`` already in the file is
kept); a file that does not exist is started from scratch without asking (C cannot tell it
from one that does not parse); a bad address or port is asked again instead of being
stored; the tcp address defaults to the listener's own loopback default (C shows the
multicast group). Every other block of the file (static maps, extensions, other listener
instances) is kept as it is. The file is written only after the dump is confirmed, through a
temporary file renamed over it, mode 0600 -- a file the C daemon reads too, as long as it
names C's plugins.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TextIO

from fence_virt.config import ConfigNode, ConfigTree, ConfigValue, load_file
from fence_virt.errors import UserError
from fence_virt.files import SECRET_FILE_MODE
from fence_virt.plugins import PluginKind, discover
from fence_virt.protocol import DEFAULT_IPV4_GROUP, DEFAULT_KEY_FILE, DEFAULT_PORT

__all__ = ["Wizard", "run_wizard"]

#: C's defaults for what the file does not say
DEFAULT_LISTENER = "multicast"
DEFAULT_BACKEND = "libvirt"
DEFAULT_URI = "qemu:///system"
DEFAULT_TCP_ADDRESS = "127.0.0.1"
#: the answer that removes an optional key (C's word)
NONE = "none"
_MAX_PORT = 65535

_LISTENER_INTRO = """
Listener modules are responsible for accepting requests
from fencing clients.
"""
_MULTICAST_INTRO = """The multicast listener module is designed for use environments
where the guests and hosts may communicate over a network using
multicast.

The multicast address is the address that a client will use to
send fencing requests to fence_virtd.
"""
_TCP_INTRO = """The TCP listener module is designed for use in environments
where the guests and hosts communicate over viosproxy.

The IP address is the address that a client will use to
send fencing requests to fence_virtd.
"""
_INTERFACE_INTRO = """Setting a preferred interface causes fence_virtd to listen only
on that interface.  Normally, it listens on all interfaces.
In environments where the virtual machines are using the host
machine as a gateway, this *must* be set (typically to virbr0).
Set to 'none' for no interface.
"""
_KEY_INTRO = """The key file is the shared key information which is used to
authenticate fencing requests.  The contents of this file must
be distributed to each physical host and virtual machine within
a cluster.
"""
_BACKEND_INTRO = """Backend modules are responsible for routing requests to
the appropriate hypervisor or management layer.
"""
_LIBVIRT_INTRO = """The libvirt backend module is designed for single desktops or
servers.  Do not use in environments where virtual machines
may be migrated between hosts.
"""


def _with_value(node: ConfigNode, key: str, value: str | None) -> ConfigNode:
    """``node`` with its ``key`` entries replaced by one ``value`` (``None``: removed)."""
    kept = [entry for entry in node.values if entry.key.casefold() != key.casefold()]
    if value is not None:
        kept.append(ConfigValue(key, value))
    return dataclasses.replace(node, values=tuple(kept))


def _with_child(
    children: tuple[ConfigNode, ...], name: str, change: Callable[[ConfigNode], ConfigNode]
) -> tuple[ConfigNode, ...]:
    """``children`` with the last block ``name`` changed (appended, empty, if missing)."""
    for index in range(len(children) - 1, -1, -1):
        if children[index].name.casefold() == name.casefold():
            return (*children[:index], change(children[index]), *children[index + 1 :])
    return (*children, change(ConfigNode(name)))


@dataclass
class Wizard:
    """One run of the wizard over ``stdin``/``stdout`` (a terminal, or anything line-based)."""

    path: Path
    stdin: TextIO
    stdout: TextIO
    tree: ConfigTree = dataclasses.field(default_factory=ConfigTree)

    # input ------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def ask(self, question: str, default: str) -> str:
        """``question [default]: ``; the answer, or ``default`` for an empty line or EOF."""
        self.say(f"{question} [{default}]: ")
        answer = self.stdin.readline()
        if not answer:
            self.say("\n")
        return answer.strip() or default

    def yes(self, question: str, *, default: bool) -> bool:
        """``question [y/N]? ``: the first letter decides; EOF or empty is ``default``."""
        self.say(f"{question} [{'Y/n' if default else 'y/N'}]? ")
        answer = self.stdin.readline()
        if not answer:
            self.say("\n")
        answer = answer.strip().lower()
        return default if not answer else answer[0] == "y"

    # the tree -------------------------------------------------------------------------------

    def get(self, path: str, default: str) -> str:
        return self.tree.get(path) or default

    def set(self, block: tuple[str, ...], key: str, value: str | None) -> None:
        """Set (or, with ``None``, remove) ``key`` in the block at ``block``, creating it."""

        def change(node: ConfigNode, rest: tuple[str, ...]) -> ConfigNode:
            if not rest:
                return _with_value(node, key, value)
            return dataclasses.replace(
                node, children=_with_child(node.children, rest[0], lambda n: change(n, rest[1:]))
            )

        children = _with_child(self.tree.children, block[0], lambda n: change(n, block[1:]))
        self.tree = dataclasses.replace(self.tree, children=children)

    # the questions ---------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the file being edited; False if it does not parse and the user gives up."""
        if not self.path.exists():
            return True
        try:
            self.tree = load_file(self.path)
        except UserError:
            self.say(f"Parsing of {self.path} failed.\n")
            return self.yes("Start from scratch", default=False)
        return True

    def list_plugins(self) -> None:
        for kind, title in ((PluginKind.BACKEND, "backends"), (PluginKind.LISTENER, "listeners")):
            self.say(f"Available {title}:\n")
            for entry in discover(kind):
                if entry.loaded and not entry.test_only:
                    self.say(f"    {entry.name} {entry.version or ''}\n")

    def address(self, question: str, block: tuple[str, ...], default: str) -> None:
        while True:
            answer = self.ask(question, self.get("/".join((*block, "@address")), default))
            try:
                version = ip_address(answer).version
            except ValueError:
                self.say(f"{answer} is not an IPv4 or IPv6 address.\n")
                continue
            family = "ipv4" if version == 4 else "ipv6"
            self.say(f"Using {family} as family.\n\n")
            self.set(block, "address", answer)
            self.set(block, "family", family)
            return

    def port(self, question: str, block: tuple[str, ...]) -> None:
        while True:
            answer = self.ask(question, self.get("/".join((*block, "@port")), str(DEFAULT_PORT)))
            if answer.isdigit() and 1 <= int(answer) <= _MAX_PORT:
                self.set(block, "port", answer)
                return
            self.say(f"{answer} is not a port number (1-{_MAX_PORT}).\n")

    def optional(self, question: str, block: tuple[str, ...], key: str, default: str) -> str:
        """Ask for an optional value; ``none`` removes the key."""
        answer = self.ask(question, self.get("/".join((*block, f"@{key}")), default))
        self.set(block, key, None if answer.lower() == NONE else answer)
        return answer

    def key_file(self, block: tuple[str, ...]) -> None:
        self.say(_KEY_INTRO + "\n")
        while True:
            answer = self.optional("Key File", block, "key_file", DEFAULT_KEY_FILE)
            if answer.lower() == NONE or answer.startswith("/"):
                return
            self.say(f"The key file {answer} is not an absolute path.\n")
            if self.yes("Use this value anyway", default=False):
                return

    def listener(self) -> None:
        self.say(_LISTENER_INTRO + "\n")
        name = self.ask("Listener module", self.get("fence_virtd/@listener", DEFAULT_LISTENER))
        self.set(("fence_virtd",), "listener", name)
        block = ("listeners", name)
        if name.lower() == "multicast":
            self.say(_MULTICAST_INTRO + "\n")
            self.address("Multicast IP Address", block, DEFAULT_IPV4_GROUP)
            self.port("Multicast IP Port", block)
            self.say(_INTERFACE_INTRO + "\n")
            self.optional("Interface", block, "interface", NONE)
            self.key_file(block)
        elif name.lower() == "tcp":
            self.say(_TCP_INTRO + "\n")
            self.address("TCP Listen IP Address", block, DEFAULT_TCP_ADDRESS)
            self.port("TCP Listen Port", block)
            self.key_file(block)
        else:
            self.say(f"Unable to configure unknown listener module '{name}'\n")

    def backend(self) -> None:
        self.say(_BACKEND_INTRO + "\n")
        name = self.ask("Backend module", self.get("fence_virtd/@backend", DEFAULT_BACKEND))
        self.set(("fence_virtd",), "backend", name)
        if name.lower() == "libvirt":
            self.say(_LIBVIRT_INTRO + "\n")
            uri = self.ask("Libvirt URI", self.get("backends/libvirt/@uri", DEFAULT_URI))
            self.set(("backends", "libvirt"), "uri", uri)
        else:
            self.say(f"Unable to configure unknown backend module '{name}'\n")

    def write(self) -> None:
        """Replace the file atomically (a temporary file beside it, renamed), mode 0600."""
        fd, temporary = tempfile.mkstemp(prefix=f"{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as stream:
                os.fchmod(stream.fileno(), SECRET_FILE_MODE)
                stream.write(self.tree.dump())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def run(self) -> int:
        """The whole dialogue; 0 when the file was written or left as it was, 1 if the file
        does not parse and the user did not start from scratch."""
        if not self.load():
            return 1
        self.list_plugins()
        self.listener()
        self.backend()
        self.say("Configuration complete.\n\n=== Begin Configuration ===\n")
        self.say(self.tree.dump())
        self.say("=== End Configuration ===\n")
        if self.yes(f"Replace {self.path} with the above", default=False):
            self.write()
        return 0


def run_wizard(path: str, stdin: TextIO, stdout: TextIO) -> int:
    """Run the wizard on the config file ``path``; see :meth:`Wizard.run`.

    :raises OSError: the file cannot be written.
    """
    return Wizard(Path(path), stdin, stdout).run()
