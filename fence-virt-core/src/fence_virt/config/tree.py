"""Immutable configuration tree with the lookup semantics of the C ``simpleconfig``.

A tree holds nodes (``name { ... }`` or ``name = "value" { ... }``) and values
(``key = "value";``), each in file order and carrying its line number.

Path lookup (:meth:`ConfigNode.get`, :meth:`ConfigTree.get`, ``.node``) follows C ``sc_get``:

* segments are separated by ``/``; names compare case-insensitively;
* a final ``@key`` selects a value, a final node name selects that node's value;
* without an index the **last** occurrence in the file wins (C stores children in reverse
  file order and takes the first match);
* ``name[N]`` / ``@key[N]`` are 1-based and count **from the end of the file**, exactly as in
  C, so ``[1]`` is the last occurrence. Path strings ported from C therefore keep their
  meaning; new code should use the file-order API instead:
  :meth:`ConfigNode.children_named`, :meth:`ConfigNode.values_named`,
  :meth:`ConfigNode.all_values`;
* ``name[@v]`` selects the (last) node named ``name`` whose value equals ``v``.

Differences from C: a final node-name segment returns the value of the node it selects
(C returns the value of the first stored sibling, whatever its name), and a malformed path
(``a[``, ``a[0]``, ``a[x]``, ``@`` with no name) raises :class:`~fence_virt.errors.LocalError`
where C quietly reports "not found".

:meth:`ConfigTree.dump` writes the C dump format (nodes first, tab-indented, then
``key = "val";``, each block closed by ``}`` and a blank line, top-level values after
top-level nodes) in **file order**; C dumps in its reverse storage order.
Line numbers and the source path are kept for messages but take no part in equality,
so ``parse(tree.dump()) == tree``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from fence_virt.errors import ConfigError, LocalError

__all__ = ["ConfigNode", "ConfigTree", "ConfigValue"]

# What the lexer can read back as one identifier / one quoted value.
_NAME = re.compile(r'[^ \t\r\n{};="#][^ \t\r\n{};="]*')
_VALUE = re.compile(r'[^"]+')
_SEGMENT = re.compile(r"(?P<name>[^\[\]]*)(?:\[(?P<index>[^\]]*)\])?")

_T = TypeVar("_T")


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise LocalError(f"{what} {name!r} cannot be written as a fence_virt.conf name")


def _check_value(value: str, what: str) -> None:
    if not _VALUE.fullmatch(value):
        raise LocalError(
            f"{what} {value!r} cannot be written as a fence_virt.conf value "
            "(must be non-empty and contain no '\"')"
        )


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """``key = "value";`` at ``line`` (0 when built in code)."""

    key: str
    value: str
    line: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.key, "key")
        _check_value(self.value, f"value of {self.key!r}")


@dataclass(frozen=True, slots=True)
class _Selector:
    """One parsed path segment: ``name``, ``name[N]`` or ``name[@value]``."""

    name: str
    index: int | None = None
    match_value: str | None = None


def _parse_segment(segment: str, path: str, *, allow_match: bool) -> _Selector:
    match = _SEGMENT.fullmatch(segment)
    if match is None or not match["name"]:
        raise LocalError(f"malformed config path {path!r}: bad segment {segment!r}")
    index_text = match["index"]
    if index_text is None:
        return _Selector(match["name"])
    if allow_match and index_text.startswith("@") and len(index_text) > 1:
        return _Selector(match["name"], match_value=index_text[1:])
    if index_text.isdecimal() and int(index_text) >= 1:
        return _Selector(match["name"], index=int(index_text))
    raise LocalError(f"malformed config path {path!r}: bad index [{index_text}]")


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _pick(candidates: tuple[_T, ...], index: int | None) -> _T | None:
    """C order: candidates are in file order, ``[1]`` (and no index) is the last one."""
    position = 1 if index is None else index
    if position > len(candidates):
        return None
    return candidates[-position]


class _Scope:
    """Lookup shared by nodes and the tree root; subclasses provide ``children`` and ``values``."""

    __slots__ = ()

    def _children(self) -> tuple[ConfigNode, ...]:
        raise NotImplementedError

    def _values(self) -> tuple[ConfigValue, ...]:
        raise NotImplementedError

    def children_named(self, name: str) -> tuple[ConfigNode, ...]:
        """Child nodes called ``name`` (case-insensitive), in file order."""
        return tuple(child for child in self._children() if _same(child.name, name))

    def child(self, name: str) -> ConfigNode | None:
        """The last child node called ``name``, or ``None``."""
        return _pick(self.children_named(name), None)

    def values_named(self, key: str) -> tuple[ConfigValue, ...]:
        """Every ``key = "...";`` entry of this scope (case-insensitive), in file order."""
        return tuple(entry for entry in self._values() if _same(entry.key, key))

    def entry(self, key: str) -> ConfigValue | None:
        """The last ``key = "...";`` entry (the one C uses), or ``None``."""
        return _pick(self.values_named(key), None)

    def all_values(self, key: str) -> tuple[str, ...]:
        """The values of every ``key`` entry, in file order (e.g. a group's ``uuid`` list)."""
        return tuple(entry.value for entry in self.values_named(key))

    def node(self, path: str) -> ConfigNode | None:
        """The node at ``path`` (``listeners/multicast``, ``groups/group[@web]``), or ``None``."""
        scope: _Scope = self
        for segment in path.split("/"):
            if segment.startswith("@"):
                raise LocalError(f"config path {path!r} names a value, not a node")
            found = scope._select(_parse_segment(segment, path, allow_match=True))
            if found is None:
                return None
            scope = found
        return scope if isinstance(scope, ConfigNode) else None

    def get(self, path: str) -> str | None:
        """The string at ``path`` (``fence_virtd/@listener``), or ``None`` if absent.

        A final ``@key`` or ``@key[N]`` selects a value; a final node segment returns that
        node's own value (``group = "name" { ... }``).
        """
        parent_path, slash, last = path.rpartition("/")
        scope = self.node(parent_path) if slash else self
        if scope is None:
            return None
        if not last.startswith("@"):
            selected = scope._select(_parse_segment(last, path, allow_match=True))
            return None if selected is None else selected.value
        selector = _parse_segment(last[1:], path, allow_match=False)
        entry = _pick(scope.values_named(selector.name), selector.index)
        return None if entry is None else entry.value

    def _select(self, selector: _Selector) -> ConfigNode | None:
        candidates = self.children_named(selector.name)
        if selector.match_value is not None:
            wanted = selector.match_value
            candidates = tuple(
                c for c in candidates if c.value is not None and _same(c.value, wanted)
            )
        return _pick(candidates, selector.index)


@dataclass(frozen=True, slots=True)
class ConfigNode(_Scope):
    """A block ``name { ... }`` or ``name = "value" { ... }``; children and values in file order.

    ``source`` is the file it came from (``None`` when built in code); with ``line`` it lets
    error messages say ``file:line``.
    """

    name: str
    value: str | None = None
    children: tuple[ConfigNode, ...] = ()
    values: tuple[ConfigValue, ...] = ()
    line: int = field(default=0, compare=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "node name")
        if self.value is not None:
            _check_value(self.value, f"value of node {self.name!r}")

    def _children(self) -> tuple[ConfigNode, ...]:
        return self.children

    def _values(self) -> tuple[ConfigValue, ...]:
        return self.values

    def dump(self) -> str:
        """This block in the C dump format (see the module docstring)."""
        return "".join(_dump_node(self, 0))

    def error(self, key: str | None, message: str) -> ConfigError:
        """A :class:`ConfigError` pointing at ``key`` in this block: ``file:line: message``.

        :param key: the key whose (last) entry is wrong; its line is used. ``None``, or a key
            that is absent (a missing setting), points at the block's own line.
        :param message: what is wrong, e.g. ``"port 0 is out of range"``.
        :returns: the error, for the caller to raise.
        """
        entry = self.entry(key) if key is not None else None
        line = entry.line if entry is not None and entry.line else self.line
        return ConfigError(message, path=self.source, line=line or None)


@dataclass(frozen=True, slots=True)
class ConfigTree(_Scope):
    """A whole file: top-level nodes and values in file order, plus where it was read from."""

    children: tuple[ConfigNode, ...] = ()
    values: tuple[ConfigValue, ...] = ()
    source: str | None = field(default=None, compare=False)

    def _children(self) -> tuple[ConfigNode, ...]:
        return self.children

    def _values(self) -> tuple[ConfigValue, ...]:
        return self.values

    def dump(self) -> str:
        """The whole tree in the C dump format, file order (C's own dump is reversed)."""
        parts = [part for node in self.children for part in _dump_node(node, 0)]
        parts.extend(_dump_value(entry, 0) for entry in self.values)
        return "".join(parts)


def _dump_node(node: ConfigNode, depth: int) -> Iterable[str]:
    indent = "\t" * depth
    if node.value is None:
        yield f"{indent}{node.name} {{\n"
    else:
        yield f'{indent}{node.name} = "{node.value}" {{\n'
    for child in node.children:
        yield from _dump_node(child, depth + 1)
    for entry in node.values:
        yield _dump_value(entry, depth + 1)
    yield f"{indent}}}\n\n"


def _dump_value(entry: ConfigValue, depth: int) -> str:
    indent = "\t" * depth
    return f'{indent}{entry.key} = "{entry.value}";\n'
