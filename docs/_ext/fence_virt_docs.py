"""Sphinx directives that generate reference text from the code, so no page repeats by hand
what the code already says (the same directives feed the HTML site and the man pages).

* ``.. fence-virt-config-keys:: BLOCK`` -- every key of one ``fence_virt.conf`` block with
  its value type, default and meaning, from the block's settings dataclass (field
  types with their ``Annotated`` checks, defaults, and the ``#:`` comment above each field).
  The dataclass of each block is listed in :data:`CONFIG_BLOCKS`; a key whose field has no
  ``#:`` comment takes its meaning from :data:`KEY_NOTES`, and a key with neither is a build
  warning (an error with ``-W``), so a new key cannot go undocumented.
* ``.. fence-virt-agent-options:: PROGRAM`` -- the options of ``fence_xvm`` or ``fence_virt``
  from the agents' own option table (``fence_virt.agents.table.OPTIONS``, the table their
  ``-h`` and ``-o metadata`` are generated from) filtered by the agent's getopt string: the
  command-line letter and the stdin name of each.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import types
import typing
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

log = logging.getLogger(__name__)

#: fence_virt.conf block -> (distribution, "module:dataclass" of the block as written)
CONFIG_BLOCKS: dict[str, tuple[str, str]] = {
    "fence_virtd": ("fence-virt-core", "fence_virt.daemon.settings:DaemonSettings"),
    "listeners/multicast": (
        "fence-virt-listener-multicast",
        "fence_virt_listener_multicast.settings:MulticastSection",
    ),
    "listeners/tcp": ("fence-virt-listener-tcp", "fence_virt_listener_tcp.settings:TcpSection"),
    "listeners/vsock": (
        "fence-virt-listener-vsock",
        "fence_virt_listener_vsock.settings:VsockSection",
    ),
    "listeners/serial": (
        "fence-virt-listener-serial",
        "fence_virt_libvirt.channels:GuestChannelSection",
    ),
    "listeners/vmchannel": (
        "fence-virt-listener-vmchannel",
        "fence_virt_libvirt.channels:GuestChannelSection",
    ),
    "backends/libvirt": (
        "fence-virt-backend-libvirt",
        "fence_virt_backend_libvirt.config:_Section",
    ),
    "backends/cpg": ("fence-virt-backend-cpg", "fence_virt_backend_cpg.config:CpgSettings"),
    "backends/ovirt": ("fence-virt-backend-ovirt", "fence_virt_backend_ovirt.config:_Section"),
    "backends/amqp": ("fence-virt-backend-amqp", "fence_virt_backend_amqp.config:AmqpSettings"),
    "extensions/prometheus": (
        "fence-virt-metrics-prometheus",
        "fence_virt_metrics_prometheus.plugin:PrometheusSettings",
    ),
}

#: (block, key) -> meaning, for fields whose dataclass has no ``#:`` comment
KEY_NOTES: dict[tuple[str, str], str] = {
    ("fence_virtd", "backend"): "the backend plugin to use (entry-point name); without it the "
    "one block in ``backends``, else the first backend that can run here",
    ("fence_virtd", "foreground"): "stay in the foreground, as ``-F``",
    ("fence_virtd", "debug"): "debug level, as ``-d``",
    ("fence_virtd", "wait_for_init"): "wait for the backend at start-up (retry every 5 s), as "
    "``-w``; ``wait_for_backend`` is accepted too",
}
for _block in ("listeners/multicast", "listeners/tcp", "listeners/vsock"):
    KEY_NOTES[(_block, "key_file")] = "the shared key file (read at start; mode set to 0600)"
    KEY_NOTES[(_block, "max_connections")] = "connections served at once; more wait in the backlog"
    KEY_NOTES[(_block, "request_timeout")] = "seconds from accepting a connection to its request"
    KEY_NOTES[(_block, "io_timeout")] = "seconds per handshake step and for the answer"
    KEY_NOTES[(_block, "port")] = "the port requests arrive on"
for _block in ("listeners/multicast", "listeners/tcp"):
    KEY_NOTES[(_block, "family")] = "``ipv4`` or ``ipv6``; may be left out when ``address`` "
    "says it"
KEY_NOTES |= {
    ("listeners/multicast", "address"): "the multicast group (default 225.0.0.12 for IPv4, "
    "ff05::3:1 for IPv6)",
    ("listeners/multicast", "interface"): "the interface to join the group on (an unknown "
    "name is an error); unset: the kernel's choice",
    ("listeners/multicast", "max_requests"): "requests served at once; more are dropped "
    "(the client retransmits)",
    ("listeners/multicast", "connect_timeout"): "seconds for the connect-back to the client",
    ("listeners/multicast", "io_timeout"): "seconds per handshake step and for the answer",
    ("listeners/tcp", "max_connections"): "connections served at once; more wait in the backlog",
    ("backends/libvirt", "uri"): "libvirt URI of a hypervisor; repeatable, and ``uri1``, "
    "``uri2``, ... as in C (a number after a gap is an error); required",
    ("backends/libvirt", "reboot_timeout"): "seconds to wait for a VM to be really off, and "
    "really running again",
    ("backends/libvirt", "off_at_qemu_exit"): "local QEMU guests: answer off once the guest's "
    "QEMU process has exited, while libvirt's destroy finishes behind (docs: the fencing point)",
    ("backends/libvirt", "qemu_pid_dir"): "where libvirt's ``NAME.pid`` files are; unset: by "
    "URI (``/run/libvirt/qemu`` for ``qemu:///system``)",
    ("backends/libvirt", "reboot_answer"): "``running``: a reboot answers once the VM runs "
    "again (as C); ``off``: once it is off and its start is issued (as fence-agents)",
}
for _block in ("listeners/serial", "listeners/vmchannel"):
    KEY_NOTES[(_block, "uri")] = "libvirt URI whose domains' sockets are served (unset: "
    "libvirt's default URI)"
    KEY_NOTES[(_block, "path")] = "the directory the guests' sockets are in (unset: anywhere)"
    KEY_NOTES[(_block, "mode")] = "``serial`` or ``vmchannel``; unset: the plugin's own"


def block_dataclass(block: str) -> type[Any]:
    """The settings dataclass of ``block``. :raises KeyError: not in :data:`CONFIG_BLOCKS`."""
    module, _, name = CONFIG_BLOCKS[block][1].partition(":")
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls


def _field_comments(cls: type[Any]) -> dict[str, str]:
    """``#:`` comments above the fields of ``cls`` (and its dataclass bases)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        analyzer = ModuleAnalyzer.for_module(klass.__module__)
        for (owner, attr), lines in analyzer.find_attr_docs().items():
            if owner == klass.__qualname__:
                found[attr] = " ".join(line.strip() for line in lines if line.strip())
    return found


def describe_type(hint: Any) -> str:
    """A value type as an administrator reads it: ``integer from 1 to 65535``, ..."""
    checks = ""
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
        checks = "".join(f", {e.expected}" for e in extras if hasattr(e, "expected"))
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return describe_type(inner[0]) + checks
    if origin is tuple:
        return describe_type(typing.get_args(hint)[0]) + checks + " (repeatable)"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(_enum_word(m) for m in hint) + checks
    names = {str: "text", int: "integer", float: "number", bool: "yes/no", Path: "path"}
    return names.get(hint, getattr(hint, "__name__", str(hint))) + checks


def _enum_word(member: enum.Enum) -> str:
    value = member.value
    return value if isinstance(value, str) else member.name.lower()


def describe_default(field: dataclasses.Field[Any]) -> str:
    """The default as written in the file, ``(required)`` or ``(unset)``."""
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
        return "(required)"
    value = field.default
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    if value is None or value == ():
        return "(unset)"
    if isinstance(value, enum.Enum):
        return _enum_word(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def key_rows(block: str) -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every key of ``block``, in the dataclass's order.

    A key without a meaning gets ``""`` (the directive warns about it)."""
    cls = block_dataclass(block)
    hints = typing.get_type_hints(cls, include_extras=True)
    comments = _field_comments(cls)
    rows = []
    for field in dataclasses.fields(cls):
        meaning = comments.get(field.name) or KEY_NOTES.get((block, field.name), "")
        kind = describe_type(hints[field.name])
        rows.append((field.name, kind, describe_default(field), meaning))
    return rows


def _entries(items: list[tuple[list[nodes.Node], list[nodes.Node]]]) -> nodes.definition_list:
    """A definition list of (term, definition) pairs: it reads well on a web page and in a
    man page alike (a man page's tables get too narrow for the meanings)."""
    listing = nodes.definition_list()
    for term, definition in items:
        item = nodes.definition_list_item()
        item += nodes.term("", "", *term)
        body = nodes.definition()
        body += definition
        item += body
        listing += item
    return listing


class ConfigKeysDirective(SphinxDirective):
    """``.. fence-virt-config-keys:: BLOCK``: every key of BLOCK, as a definition list."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        block = self.arguments[0]
        if block not in CONFIG_BLOCKS:
            raise self.error(f"unknown block {block!r}: add it to CONFIG_BLOCKS")
        module = CONFIG_BLOCKS[block][1].partition(":")[0]
        self.env.note_dependency(importlib.import_module(module).__file__ or "")
        items = []
        for key, kind, default, meaning in key_rows(block):
            if not meaning:
                log.warning(
                    "%s: key %r has no #: comment and no KEY_NOTES entry",
                    block,
                    key,
                    location=self.get_location(),
                )
            shown = default if default.startswith("(") else f"``{default}``"
            term = [nodes.literal(text=key), *self._inline(f" -- {kind}; default {shown}")]
            items.append((term, [self._paragraph(meaning)]))
        return [_entries(items)]

    def _inline(self, text: str) -> list[nodes.Node]:
        inline, _messages = self.state.inline_text(text, self.lineno)
        return list(inline)

    def _paragraph(self, text: str) -> nodes.paragraph:
        paragraph = nodes.paragraph()
        paragraph += self._inline(text)
        return paragraph


class AgentOptionsDirective(SphinxDirective):
    """``.. fence-virt-agent-options:: PROGRAM``: the agent's options, as a definition list."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from fence_virt.agents import table, virt, xvm  # noqa: PLC0415 - Sphinx loads lazily

        programs = {xvm.PROGRAM: xvm.OPTSTRING, virt.PROGRAM: virt.OPTSTRING}
        program = self.arguments[0]
        if program not in programs:
            raise self.error(f"unknown agent {program!r}")
        letters = set(programs[program].replace(":", ""))
        items = []
        for spec in table.OPTIONS:
            on_command_line = bool(spec.letter) and spec.letter in letters
            if not (on_command_line or (spec.always and spec.name)):
                continue
            if spec.name in ("agent", "self", "nodename"):
                continue
            names = []
            if on_command_line and spec.usage:
                names.append(spec.usage)
            if spec.name:
                names.append(f"{spec.name}=")
            term: list[nodes.Node] = []
            for n, name in enumerate(names):
                term += [nodes.Text(", ")] if n else []
                term.append(nodes.literal(text=name))
            items.append((term, [nodes.paragraph(text=spec.description)]))
        return [_entries(items)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("fence-virt-config-keys", ConfigKeysDirective)
    app.add_directive("fence-virt-agent-options", AgentOptionsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
