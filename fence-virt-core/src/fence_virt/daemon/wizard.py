"""``fence_virtd -c``: the C daemon's configuration wizard (c-suite-spec §5.5), with the
pages C lacks and a form without a terminal.

The same questions, defaults, prompts and explanations as C, in C's order: the listener
module (multicast: group address, port, interface, key file; tcp: address, port, key file),
then the backend module (libvirt: URI). Prompts read ``TEXT [default]: `` and an empty
answer keeps the default; yes/no questions read ``[y/N]? `` and the first letter decides
(end of input: the default). Defaults come from the file being edited, else C's.

Pages C lacks: any other installed listener or backend plugin is configured through the
questions it declares (``wizard_questions``, :class:`fence_virt.WizardQuestion`) -- serial,
vmchannel and vsock listeners, cpg and ovirt backends, third-party plugins alike; after the
first listener, ``Add another listener instance`` (asked with ``--add-listeners`` only: the
question is not C's, and scripts typing C's answers must not meet it) adds further instances
(``listener = "b";`` and ``listeners { b { plugin = "..."; ... } }``, docs/architecture.md).

Without a terminal (``--answer ID=VALUE``, :mod:`fence_virt.daemon.wizard_answers`) the same
questions are answered from the command line: the same code runs, so the same answers give
the same file.

Differences from C: the "Module search path" question is not asked -- plugins are entry
points, so the installed ones are listed instead (``module_path`` already in the file is
kept); a file that does not exist is started from scratch without asking (C cannot tell it
from one that does not parse); a bad address or port is asked again instead of being
stored; the tcp address defaults to the listener's own loopback default (C shows the
multicast group). Every other block of the file (static maps, extensions, other listener
instances) is kept as it is. The file is written only after the dump is confirmed, through a
temporary file renamed over it, mode 0600 -- a file the C daemon reads too, as long as it
names C's plugins and one listener instance.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TextIO

from fence_virt.config import ConfigNode, ConfigTree, ConfigValue, load_file
from fence_virt.daemon.layout import INSTANCE_NAME
from fence_virt.daemon.wizard_answers import Answers
from fence_virt.errors import UserError
from fence_virt.files import SECRET_FILE_MODE
from fence_virt.plugins import PluginEntry, PluginKind, discover
from fence_virt.protocol import DEFAULT_IPV4_GROUP, DEFAULT_KEY_FILE, DEFAULT_PORT
from fence_virt.types import WizardQuestion

__all__ = ["Wizard", "plugin_questions", "run_wizard"]

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
_INSTANCE_INTRO = """A further listener instance serves another guest cluster (its own
key, port and static map) or another transport.  Its name is its
block's (listeners { NAME { ... } }); the listener module asked next
serves it.  Give it its own key file and, for a second multicast
instance, its own port.
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


def _with_first_value(node: ConfigNode, key: str, value: str) -> ConfigNode:
    """``node`` with the first ``key`` entry set to ``value`` (appended if none); the other
    ``key`` entries (further listener instances) stay as they are."""
    values = list(node.values)
    for index, entry in enumerate(values):
        if entry.key.casefold() == key.casefold():
            values[index] = ConfigValue(key, value)
            return dataclasses.replace(node, values=tuple(values))
    return dataclasses.replace(node, values=(*values, ConfigValue(key, value)))


def _with_added_value(node: ConfigNode, key: str, value: str) -> ConfigNode:
    return dataclasses.replace(node, values=(*node.values, ConfigValue(key, value)))


def _with_child(
    children: tuple[ConfigNode, ...], name: str, change: Callable[[ConfigNode], ConfigNode]
) -> tuple[ConfigNode, ...]:
    """``children`` with the last block ``name`` changed (appended, empty, if missing)."""
    for index in range(len(children) - 1, -1, -1):
        if children[index].name.casefold() == name.casefold():
            return (*children[:index], change(children[index]), *children[index + 1 :])
    return (*children, change(ConfigNode(name)))


def _installed(kind: PluginKind) -> dict[str, PluginEntry]:
    """The installed plugins the wizard offers, by lower-case name (never the test kit's)."""
    return {
        entry.name.lower(): entry
        for entry in discover(kind)
        if entry.loaded and not entry.test_only
    }


def plugin_questions(entry: PluginEntry) -> tuple[WizardQuestion, ...] | None:
    """The plugin's ``wizard_questions`` (:class:`fence_virt.WizardQuestion`), ``None`` if it
    declares none.

    :raises PluginError: the attribute is not a sequence of ``WizardQuestion``.
    """
    declared = getattr(entry.obj, "wizard_questions", None)
    if declared is None:
        return None
    if not isinstance(declared, Sequence) or not all(
        isinstance(question, WizardQuestion) for question in declared
    ):
        raise entry.failure(f"wizard_questions is {declared!r}, not a tuple of WizardQuestion")
    return tuple(declared)


@dataclass
class Wizard:
    """One run of the wizard over ``stdin``/``stdout`` (a terminal, or anything line-based).

    With ``answers`` it runs without asking: each question takes its answer from there (by
    the key path it sets; :mod:`fence_virt.daemon.wizard_answers`) or its default, nothing
    is shown, an answer the interactive run would ask again is an error, and the file is
    written without confirmation.
    """

    path: Path
    stdin: TextIO
    stdout: TextIO
    answers: Answers | None = None
    tree: ConfigTree = dataclasses.field(default_factory=ConfigTree)
    listeners: dict[str, PluginEntry] = dataclasses.field(default_factory=dict)
    backends: dict[str, PluginEntry] = dataclasses.field(default_factory=dict)
    #: offer further listener instances after the first (``--add-listeners``)
    more_listeners: bool = False
    #: the terminal's input has ended
    ended: bool = False

    # input ------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if self.answers is None:
            self.stdout.write(text)
            self.stdout.flush()

    def _read(self, answer_id: str) -> str | None:
        """The next line typed (``None`` at EOF), or the next given answer (``None``: none)."""
        if self.answers is not None:
            return self.answers.take(answer_id)
        line = self.stdin.readline()
        if not line:
            self.say("\n")
            self.ended = True
            return None
        return line

    def ask(self, question: str, default: str | None, answer_id: str) -> str:
        """``question [default]: ``; the answer, or ``default`` for an empty line or EOF
        (``question: `` and ``""`` without a default). ``answer_id``: the key path it sets."""
        self.say(f"{question} [{default}]: " if default is not None else f"{question}: ")
        answer = (self._read(answer_id) or "").strip()
        return answer or (default or "")

    def yes(self, question: str, *, default: bool, answer_id: str | None = None) -> bool:
        """``question [y/N]? ``: the first letter decides; EOF or empty is ``default``.

        Without a terminal: ``answer_id`` decides (yes while answers for it are left); a
        question with no ``answer_id`` is one the interactive run asks only to confirm a
        doubtful answer, so it is an error there (:meth:`refuse`).
        """
        if self.answers is not None:
            if answer_id is None:
                raise UserError(f"fence_virtd -c: would ask {question!r}; give another answer")
            return self.answers.has(answer_id)
        self.say(f"{question} [{'Y/n' if default else 'y/N'}]? ")
        answer = (self._read("") or "").strip().lower()
        return default if not answer else answer[0] == "y"

    def refuse(self, answer_id: str, answer: str, why: str) -> None:
        """Say why ``answer`` is refused (and ask again); without a terminal, raise.

        :raises UserError: in the non-interactive form.
        """
        if self.answers is not None:
            if not answer:
                raise UserError(f"{answer_id} has no default: give --answer {answer_id}=VALUE")
            raise UserError(f"--answer {answer_id}={answer}: {why}")
        self.say(why + "\n")
        if self.ended:  # asking again would read end of input forever
            raise UserError(f"{why} (end of input)")

    # the tree -------------------------------------------------------------------------------

    def get(self, path: str, default: str) -> str:
        return self.tree.get(path) or default

    def set(self, block: tuple[str, ...], key: str, value: str | None) -> None:
        """Set (or, with ``None``, remove) ``key`` in the block at ``block``, creating it."""
        self.change(block, lambda node: _with_value(node, key, value))

    def change(self, block: tuple[str, ...], change: Callable[[ConfigNode], ConfigNode]) -> None:
        """Replace the block at ``block`` (created empty if missing) by ``change(block)``."""

        def walk(node: ConfigNode, rest: tuple[str, ...]) -> ConfigNode:
            if not rest:
                return change(node)
            return dataclasses.replace(
                node, children=_with_child(node.children, rest[0], lambda n: walk(n, rest[1:]))
            )

        children = _with_child(self.tree.children, block[0], lambda n: walk(n, block[1:]))
        self.tree = dataclasses.replace(self.tree, children=children)

    def instances(self) -> list[str]:
        """The listener instances the file names (``listener`` lines, in order)."""
        node = next(
            (n for n in reversed(self.tree.children) if n.name.casefold() == "fence_virtd"), None
        )
        if node is None:
            return []
        return [entry.value for entry in node.values if entry.key.casefold() == "listener"]

    # the questions ---------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the file being edited; False if it does not parse and the user gives up.

        :raises UserError: it does not parse and there is no terminal to ask.
        """
        if not self.path.exists():
            return True
        try:
            self.tree = load_file(self.path)
        except UserError as exc:
            if self.answers is not None:
                raise UserError(f"{exc}; fix or remove the file, then run again") from exc
            self.say(f"Parsing of {self.path} failed.\n")
            return self.yes("Start from scratch", default=False)
        return True

    def list_plugins(self) -> None:
        for plugins, title in ((self.backends, "backends"), (self.listeners, "listeners")):
            self.say(f"Available {title}:\n")
            for entry in plugins.values():
                self.say(f"    {entry.name} {entry.version or ''}\n")

    def address(self, question: str, block: tuple[str, ...], default: str) -> None:
        answer_id = _key_path(block, "address")
        while True:
            answer = self.ask(question, self.get(_at(block, "address"), default), answer_id)
            try:
                version = ip_address(answer).version
            except ValueError:
                self.refuse(answer_id, answer, f"{answer} is not an IPv4 or IPv6 address.")
                continue
            family = "ipv4" if version == 4 else "ipv6"
            self.say(f"Using {family} as family.\n\n")
            self.set(block, "address", answer)
            self.set(block, "family", family)
            return

    def port(self, question: str, block: tuple[str, ...]) -> None:
        self.question(
            block,
            WizardQuestion(
                "port",
                question,
                str(DEFAULT_PORT),
                number=(1, _MAX_PORT),
                number_name="port number",
            ),
        )

    def optional(self, question: str, block: tuple[str, ...], key: str, default: str) -> str:
        """Ask for an optional value; ``none`` removes the key."""
        return self.question(block, WizardQuestion(key, question, default, removable=True))

    def key_file(self, block: tuple[str, ...]) -> None:
        self.say(_KEY_INTRO + "\n")
        self.question(
            block,
            WizardQuestion(
                "key_file", "Key File", DEFAULT_KEY_FILE, removable=True, absolute_path=True
            ),
        )

    def question(self, block: tuple[str, ...], question: WizardQuestion) -> str:
        """Ask ``question`` about ``block`` until the answer is accepted; store it."""
        if question.intro:
            self.say(question.intro.rstrip("\n") + "\n\n")
        answer_id = _key_path(block, question.key)
        if question.repeatable and len(self._entries(block, question.key)) > 1:
            kept = ", ".join(self._entries(block, question.key)[1:])
            self.say(f"Kept as they are, after the first: {question.key} = {kept}\n")
        while True:
            default = self._current(block, question) or question.default
            answer = self.ask(question.prompt, default, answer_id)
            problem = question.problem(answer)
            if problem is not None:
                self.refuse(answer_id, answer, problem)
                continue
            removed = question.removable and answer.lower() == NONE
            # stored before the confirmation: asked again, C shows it as the default
            if question.repeatable and not removed:
                self.change(
                    block, functools.partial(_with_first_value, key=question.key, value=answer)
                )
            else:
                self.set(block, question.key, None if removed else answer)
            if question.absolute_path and not removed and not answer.startswith("/"):
                what = question.prompt.lower()
                self.refuse(answer_id, answer, f"The {what} {answer} is not an absolute path.")
                if not self.yes("Use this value anyway", default=False):
                    continue
            return answer

    def _entries(self, block: tuple[str, ...], key: str) -> tuple[str, ...]:
        """Every ``key`` value of the block, in file order."""
        node = self.tree.node("/".join(block))
        return () if node is None else node.all_values(key)

    def _current(self, block: tuple[str, ...], question: WizardQuestion) -> str | None:
        """The file's value: the one C reads (the last), or a repeatable key's first."""
        if question.repeatable:
            return next(iter(self._entries(block, question.key)), None)
        return self.tree.get(_at(block, question.key))

    def listener_page(self, plugin: str, block: tuple[str, ...]) -> None:
        """The questions about one listener instance's block, by the plugin serving it."""
        if plugin.lower() == "multicast":
            self.say(_MULTICAST_INTRO + "\n")
            self.address("Multicast IP Address", block, DEFAULT_IPV4_GROUP)
            self.port("Multicast IP Port", block)
            self.say(_INTERFACE_INTRO + "\n")
            self.optional("Interface", block, "interface", NONE)
            self.key_file(block)
        elif plugin.lower() == "tcp":
            self.say(_TCP_INTRO + "\n")
            self.address("TCP Listen IP Address", block, DEFAULT_TCP_ADDRESS)
            self.port("TCP Listen Port", block)
            self.key_file(block)
        else:
            self.plugin_page(self.listeners, "listener", plugin, block)

    def plugin_page(
        self, plugins: dict[str, PluginEntry], kind: str, plugin: str, block: tuple[str, ...]
    ) -> None:
        """The plugin's own questions (``wizard_questions``), if it is installed and has any."""
        entry = plugins.get(plugin.lower())
        questions = plugin_questions(entry) if entry is not None else None
        if entry is None or questions is None:
            why = "not installed" if entry is None else "it declares no questions"
            self.say(f"Unable to configure {kind} module '{plugin}' ({why}).\n\n")
            return
        self.say(f"{entry.description}\n\n")
        for question in questions:
            self.question(block, question)

    def listener(self) -> None:
        self.say(_LISTENER_INTRO + "\n")
        first = next(iter(self.instances()), DEFAULT_LISTENER)
        name = self.ask("Listener module", first, "fence_virtd/listener")
        self.change(("fence_virtd",), lambda node: _with_first_value(node, "listener", name))
        self.listener_page(self.get(f"listeners/{name}/@plugin", name), ("listeners", name))
        # asked only on request: C's dialogue, which scripts may type into, stays C's
        if self.answers is None and not self.more_listeners:
            return
        for further in self.instances()[1:]:
            self.revisit(further)
        while self.yes(
            "Add another listener instance", default=False, answer_id="fence_virtd/listener"
        ):
            self.more_listener()

    def revisit(self, name: str) -> None:
        """The questions about a further instance the file has already."""
        self.say(f"Listener instance {name}:\n")
        given = self.answers.peek("fence_virtd/listener") if self.answers else None
        if self.answers is not None and given is not None and given.casefold() == name.casefold():
            self.answers.take("fence_virtd/listener")  # named again: the same instance
        self.instance_page(name, self.get(f"listeners/{name}/@plugin", name))

    def more_listener(self) -> None:
        """A further listener instance: its name, its plugin, its plugin's questions."""
        self.say(_INSTANCE_INTRO + "\n")
        while True:
            name = self.ask("Instance name", None, "fence_virtd/listener")
            if not INSTANCE_NAME.fullmatch(name):
                self.refuse("fence_virtd/listener", name, f"'{name}' is not a plain word.")
            elif name.casefold() in (known.casefold() for known in self.instances()):
                self.refuse("fence_virtd/listener", name, f"'{name}' is configured already.")
            else:
                break
        self.change(("fence_virtd",), lambda node: _with_added_value(node, "listener", name))
        self.instance_page(name, name if name.lower() in self.listeners else DEFAULT_LISTENER)

    def instance_page(self, name: str, default: str) -> None:
        """A further instance's plugin (``plugin`` key unless it is the name), then its page."""
        block = ("listeners", name)
        plugin = self.ask("Listener module", default, _key_path(block, "plugin"))
        self.set(block, "plugin", None if plugin.casefold() == name.casefold() else plugin)
        self.listener_page(plugin, block)

    def backend(self) -> None:
        self.say(_BACKEND_INTRO + "\n")
        name = self.ask(
            "Backend module",
            self.get("fence_virtd/@backend", DEFAULT_BACKEND),
            "fence_virtd/backend",
        )
        self.set(("fence_virtd",), "backend", name)
        if name.lower() == "libvirt":
            self.say(_LIBVIRT_INTRO + "\n")
            self.question(
                ("backends", "libvirt"),
                # repeatable: our libvirt backend serves several URIs; with one, as C's page
                WizardQuestion("uri", "Libvirt URI", DEFAULT_URI, repeatable=True),
            )
        else:
            self.plugin_page(self.backends, "backend", name, ("backends", name))

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
        does not parse and the user did not start from scratch.

        :raises UserError: (non-interactive form) an answer is refused or used by no question.
        :raises PluginError: a plugin's ``wizard_questions`` is malformed.
        """
        if not self.load():
            return 1
        self.listeners = _installed(PluginKind.LISTENER)
        self.backends = _installed(PluginKind.BACKEND)
        self.list_plugins()
        self.listener()
        self.backend()
        if self.answers is not None:
            unused = self.answers.unused()
            if unused:
                raise UserError(
                    f"--answer {', '.join(unused)}: no question sets this "
                    "(a misspelt key, or a plugin that was not chosen); nothing written"
                )
            self.write()
            self.stdout.write(f"wrote {self.path}\n")
            return 0
        self.say("Configuration complete.\n\n=== Begin Configuration ===\n")
        self.say(self.tree.dump())
        self.say("=== End Configuration ===\n")
        if self.yes(f"Replace {self.path} with the above", default=False):
            self.write()
        return 0


def _key_path(block: tuple[str, ...], key: str) -> str:
    """``listeners/multicast/port``: how an answer names the question about ``key``."""
    return "/".join((*block, key))


def _at(block: tuple[str, ...], key: str) -> str:
    """The tree path of ``key`` in ``block``: ``listeners/multicast/@port``."""
    return "/".join((*block, f"@{key}"))


def run_wizard(
    path: str,
    stdin: TextIO,
    stdout: TextIO,
    answers: Answers | None = None,
    *,
    more_listeners: bool = False,
) -> int:
    """Run the wizard on the config file ``path``; see :meth:`Wizard.run`.

    :param answers: the non-interactive form's answers (``None``: ask on ``stdin``).
    :param more_listeners: offer further listener instances (the non-interactive form adds
        one per further ``fence_virtd/listener`` answer without it).
    :raises OSError: the file cannot be written.
    :raises UserError: as :meth:`Wizard.run`.
    """
    return Wizard(Path(path), stdin, stdout, answers, more_listeners=more_listeners).run()
