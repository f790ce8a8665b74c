"""Typed views of config sections: a frozen dataclass schema per plugin section.

A schema field is filled from the section's ``key = "value";`` entries. Supported field types:
``str``, ``int``, ``bool``, ``float``, :class:`pathlib.Path`, an :class:`enum.Enum` (through
its ``parse(str)`` classmethod if it has one, else by member name, case-insensitively),
``X | None`` of those, and ``tuple[X, ...]`` (every occurrence of a repeatable key, in file
order, e.g. a group's ``uuid`` entries). A type may be wrapped in ``Annotated[X, check, ...]``
with :class:`~fence_virt.config.checks.Check` conditions (``Annotated[int, PORT]``), which run
on every converted value. Subsections are read only when the schema asks: a
field whose type is itself a dataclass schema (optionally ``| None``) takes the last child
block of that name, ``tuple[Schema, ...]`` takes every such block in file order.

Field metadata:

* ``key``: the config key when it differs from the field name;
* ``aliases``: older spellings, consulted only when ``key`` is absent, in the order given
  (``field(default=0, metadata={"key": "wait_for_init", "aliases": ("wait_for_backend",)})``);
* ``node_value``: ``True`` to take the section's own value (``group = "web" { ... }``).

Semantics: the last occurrence of a key wins (as in C), and a key or block that holds one
value but is written more than once is warned about, naming every line; missing keys take
the dataclass default, a missing key without default is an error. Values are parsed
strictly -- C reads numbers with ``atoi``, so ``port = "12ab"`` means 12 and
``port = "abc"`` means 0 there; here both are errors at the value's ``file:line``. Booleans
accept a decimal integer (non-zero is true, as with ``atoi``) or ``yes/no``,
``true/false``, ``on/off`` (C would read those words as 0).
Unknown keys and unknown blocks do not fail: each is logged on the ``fence_virt.config``
logger and appended to the caller's ``warnings`` list.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import inspect
import logging
import math
import operator
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fence_virt.config.checks import Check
from fence_virt.config.tree import ConfigNode, ConfigValue
from fence_virt.errors import ConfigError, LocalError

__all__ = ["ConfigWarning", "load_section"]

_log = logging.getLogger("fence_virt.config")

T = TypeVar("T")

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = frozenset({"yes", "true", "on"})
_FALSE = frozenset({"no", "false", "off"})


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """A survivable oddity in the config (an unknown key); ``str()`` starts with ``file:line:``."""

    message: str
    source: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.source is not None and self.line is not None:
            return f"{self.source}:{self.line}: {self.message}"
        if self.source is not None:
            return f"{self.source}: {self.message}"
        return self.message


class _Kind(enum.Enum):
    SCALAR = "scalar"
    MANY = "many"
    SECTION = "section"
    SECTIONS = "sections"
    NODE_VALUE = "node value"


_VALUE_KINDS = frozenset({_Kind.SCALAR, _Kind.MANY})
_BLOCK_KINDS = frozenset({_Kind.SECTION, _Kind.SECTIONS})


Converter = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    """How one schema field is read; ``keys`` is the config key followed by its aliases."""

    attr: str
    keys: tuple[str, ...]
    kind: _Kind
    required: bool
    convert: Converter = str
    section: type | None = None
    checks: tuple[Check, ...] = ()


def load_section(
    node: ConfigNode | None,
    schema: type[T],
    *,
    where: str,
    source: str | None = None,
    warnings: list[ConfigWarning] | None = None,
) -> T:
    """Build a ``schema`` instance from ``node`` (``None``: the section is absent, use defaults).

    ``where`` is the section's path for messages (``listeners/multicast``); ``source`` names
    the file when ``node`` is ``None``. Raises :class:`ConfigError` for a bad or missing value.
    """
    specs = _field_specs(schema)
    if node is not None:
        _warn_unknown(node, specs, where, warnings)
    origin = _Origin(node, where, (node.source if node is not None else None) or source, warnings)
    kwargs: dict[str, Any] = {}
    for spec in specs:
        found, value = origin.read(spec)
        if found:
            kwargs[spec.attr] = value
        elif spec.required:
            raise origin.error(_missing(spec, where))
    return schema(**kwargs)


def _missing(spec: _FieldSpec, where: str) -> str:
    if spec.kind is _Kind.NODE_VALUE:
        return f'block {where} needs a value: {where.rpartition("/")[2]} = "..." {{ ... }}'
    what = "block" if spec.kind is _Kind.SECTION else "key"
    return f"missing required {what} {spec.keys[0]!r} in {where or 'top level'}"


@dataclass(frozen=True, slots=True)
class _Origin:
    """The section being read and where its messages point."""

    node: ConfigNode | None
    where: str
    source: str | None
    warnings: list[ConfigWarning] | None

    def error(self, message: str, line: int | None = None) -> ConfigError:
        if line is None and self.node is not None:
            line = self.node.line or None
        return ConfigError(message, path=self.source, line=line)

    def read(self, spec: _FieldSpec) -> tuple[bool, object]:
        """``(True, value)`` when the section supplies the field, else ``(False, None)``."""
        if spec.kind is _Kind.SECTION or spec.kind is _Kind.SECTIONS:
            return self._read_sections(spec)
        if self.node is None:
            return False, None
        return self._read_values(self.node, spec)

    def _read_values(self, node: ConfigNode, spec: _FieldSpec) -> tuple[bool, object]:
        if spec.kind is _Kind.NODE_VALUE:
            if node.value is None:
                return False, None
            return True, self._convert(spec, spec.keys[0], node.value, node.line)
        if spec.kind is _Kind.MANY:
            entries = [e for e in node.values if e.key.casefold() in _folded(spec.keys)]
            return bool(entries), tuple(self._convert_entry(spec, e) for e in entries)
        for key in spec.keys:
            written = node.values_named(key)
            if written:
                self._warn_repeated(f"key {written[-1].key!r}", [e.line for e in written])
                return True, self._convert_entry(spec, written[-1])
        return False, None

    def _warn_repeated(self, what: str, lines: list[int]) -> None:
        """One warning when a key or block that holds one value is written more than once:
        the last wins, as in C, but a forgotten earlier line is usually a mistake."""
        if len(lines) < 2:
            return
        earlier = ", ".join(str(line) for line in lines[:-1])
        message = (
            f"{what} in {self.where or 'top level'} is written {len(lines)} times "
            f"(also at line{'s' if len(lines) > 2 else ''} {earlier}): the last one is used"
        )
        _warn(ConfigWarning(message, self.source, lines[-1] or None), self.warnings)

    def _read_sections(self, spec: _FieldSpec) -> tuple[bool, object]:
        assert spec.section is not None
        name = spec.keys[0]
        path = f"{self.where}/{name}" if self.where else name
        children = self.node.children_named(name) if self.node is not None else ()
        if spec.kind is _Kind.SECTIONS:
            loaded = tuple(self._load(child, spec.section, path) for child in children)
            return bool(children) or spec.required, loaded
        if children:
            self._warn_repeated(f"block {children[-1].name!r}", [c.line for c in children])
            return True, self._load(children[-1], spec.section, path)
        if spec.required:
            return True, self._load(None, spec.section, path)
        return False, None

    def _load(self, child: ConfigNode | None, schema: type, path: str) -> object:
        return load_section(child, schema, where=path, source=self.source, warnings=self.warnings)

    def _convert_entry(self, spec: _FieldSpec, entry: ConfigValue) -> object:
        return self._convert(spec, entry.key, entry.value, entry.line)

    def _convert(self, spec: _FieldSpec, key: str, text: str, line: int) -> object:
        try:
            value = spec.convert(text)
            for check in spec.checks:
                check(value)
        except (ValueError, LookupError) as exc:
            raise self.error(
                f'bad value "{text}" for key {key!r} in {self.where or "top level"}: {exc}',
                line or None,
            ) from exc
        return value


@functools.cache
def _folded(keys: tuple[str, ...]) -> frozenset[str]:
    return frozenset(key.casefold() for key in keys)


def _warn_unknown(
    node: ConfigNode,
    specs: tuple[_FieldSpec, ...],
    where: str,
    warnings: list[ConfigWarning] | None,
) -> None:
    known = sorted(
        {key for spec in specs if spec.kind in _VALUE_KINDS for key in spec.keys},
        key=str.casefold,
    )
    folded = _folded(tuple(known))
    for entry in node.values:
        if entry.key.casefold() in folded:
            continue
        close = difflib.get_close_matches(entry.key, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = (
            f"unknown key {entry.key!r} in {where or 'top level'} "
            f"({hint}known: {', '.join(known) or 'none'})"
        )
        _warn(ConfigWarning(message, node.source, entry.line or None), warnings)
    blocks = {key.casefold() for spec in specs if spec.kind in _BLOCK_KINDS for key in spec.keys}
    for child in node.children:
        if child.name.casefold() not in blocks:
            message = (
                f"unknown block {child.name!r} in {where or 'top level'} (ignored; known "
                f"blocks: {', '.join(sorted(blocks)) or 'none'})"
            )
            _warn(ConfigWarning(message, node.source, child.line or None), warnings)


def _warn(warning: ConfigWarning, warnings: list[ConfigWarning] | None) -> None:
    _log.warning("%s", warning)
    if warnings is not None:
        warnings.append(warning)


_SPECS: dict[type, tuple[_FieldSpec, ...]] = {}


def _field_specs(schema: type) -> tuple[_FieldSpec, ...]:
    specs = _SPECS.get(schema)
    if specs is None:
        specs = _SPECS[schema] = _build_specs(schema)
    return specs


def _build_specs(schema: type) -> tuple[_FieldSpec, ...]:
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        raise LocalError(f"config schema {schema!r} is not a dataclass")
    hints = typing.get_type_hints(schema, include_extras=True)
    fields = (f for f in dataclasses.fields(schema) if f.init)
    return tuple(_field_spec(schema, f, hints[f.name]) for f in fields)


def _field_spec(schema: type, field: dataclasses.Field[Any], hint: object) -> _FieldSpec:
    key = field.metadata.get("key", field.name)
    keys = (key, *field.metadata.get("aliases", ()))
    has_default = (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    )
    inner, checks = _strip_annotated(hint)
    inner, more = _strip_annotated(_strip_optional(inner))
    checks += more
    required = not has_default
    if field.metadata.get("node_value", False):
        convert = _converter(schema, inner)
        return _FieldSpec(field.name, keys, _Kind.NODE_VALUE, required, convert, checks=checks)
    item = _tuple_item(inner)
    if item is not None:
        item, more = _strip_annotated(item)
        checks += more
    if item is not None and _is_schema(item):
        return _FieldSpec(field.name, keys, _Kind.SECTIONS, required, section=item)
    if item is not None:
        convert = _converter(schema, item)
        return _FieldSpec(field.name, keys, _Kind.MANY, required, convert, checks=checks)
    if _is_schema(inner):
        return _FieldSpec(field.name, keys, _Kind.SECTION, required, section=inner)
    convert = _converter(schema, inner)
    return _FieldSpec(field.name, keys, _Kind.SCALAR, required, convert, checks=checks)


def _strip_annotated(hint: object) -> tuple[object, tuple[Check, ...]]:
    """``Annotated[X, c1, c2]`` -> ``(X, (c1, c2))`` keeping only :class:`Check` extras."""
    if typing.get_origin(hint) is not typing.Annotated:
        return hint, ()
    base, *extras = typing.get_args(hint)
    return base, tuple(extra for extra in extras if isinstance(extra, Check))


def _strip_optional(hint: object) -> object:
    """``X | None`` -> ``X``; anything else unchanged (and refused later if it is a union)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            item: object = args[0]
            return item
    return hint


def _tuple_item(hint: object) -> object | None:
    """``tuple[X, ...]`` -> ``X``; anything else -> ``None``."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item: object = args[0]
            return item
    return None


def _is_schema(hint: object) -> typing.TypeGuard[type]:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _converter(schema: type, hint: object) -> Converter:
    if hint is str:
        return str
    if hint is bool:
        return _to_bool
    if hint is int:
        return _to_int
    if hint is float:
        return _to_float
    if hint is Path:
        return Path
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_converter(hint)
    raise LocalError(f"config schema {schema.__name__}: unsupported field type {hint!r}")


def _to_int(text: str) -> int:
    if not _INT.fullmatch(text.strip()):
        raise ValueError("expected a decimal integer")
    return int(text)


def _to_float(text: str) -> float:
    if not _FLOAT.fullmatch(text.strip()):
        raise ValueError("expected a decimal number")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("expected a finite decimal number")
    return number


def _to_bool(text: str) -> bool:
    word = text.strip().casefold()
    if _INT.fullmatch(word):
        return int(word) != 0
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expected a boolean (1/0, yes/no, true/false, on/off)")


def _enum_converter(enum_type: type[enum.Enum]) -> Converter:
    if isinstance(inspect.getattr_static(enum_type, "parse", None), classmethod | staticmethod):
        parser: Converter = operator.attrgetter("parse")(enum_type)
        return parser
    by_name = {member.name.casefold(): member for member in enum_type}
    choices = ", ".join(member.name.lower() for member in enum_type)

    def convert(text: str) -> enum.Enum:
        member = by_name.get(text.strip().casefold())
        if member is None:
            raise ValueError(f"expected one of {choices}")
        return member

    return convert
