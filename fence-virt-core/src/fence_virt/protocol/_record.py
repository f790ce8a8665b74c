"""Immutable value records for the wire messages, without importing :mod:`dataclasses`.

Measured, not assumed: the four records as ``@dataclass(frozen=True, slots=True)`` add 16-21
ms of CPU time to every ``fence_xvm -o status`` (Pacemaker pays it per monitor; 37 -> 58 ms in
one run): ``bench/client_startup.py --interleave --runs 300 --tree base=A --tree
dataclasses=B``, B being this package with those dataclasses (the table in
:mod:`fence_virt.agents`). Importing dataclasses (inspect, ast, re) is 11.5 ms of it
(``python -X importtime -c "import socket, struct, enum; import dataclasses"``); generating
the four classes is most of the rest.

A record is a ``__slots__`` class whose ``__init__`` stores its fields with :func:`store`;
:class:`Record` gives it what frozen dataclasses have: value equality and hashing over the
fields in ``__slots__`` order, the same repr, :class:`dataclasses.FrozenInstanceError` on
assignment, pickling and copying. Code written for dataclasses keeps working:
``dataclasses.replace``, ``fields`` and ``is_dataclass`` see a lazily built
``__dataclass_fields__`` (dataclasses loads only then).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from dataclasses import Field
    from typing import Any, ClassVar, Self

#: sets a field from ``__init__``; ``Record.__setattr__`` refuses every assignment
store = object.__setattr__


class _DataclassView:
    """``__dataclass_fields__`` / ``__dataclass_params__`` of a record class, built on first use."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: object, owner: type[Record]) -> Any:
        if owner is Record:
            raise AttributeError(self._name)
        shadow = _shadow(owner)
        # cached in the subclass's own dict, which class lookup consults before Record's
        for name in _VIEWS:
            type.__setattr__(owner, name, getattr(shadow, name))
        return getattr(shadow, self._name)


_VIEWS = ("__dataclass_fields__", "__dataclass_params__")


def _shadow(cls: type[Record]) -> type:
    """A frozen dataclass with ``cls``'s name, fields, annotations and defaults."""
    import dataclasses  # noqa: PLC0415

    defaults = _init_defaults(cls)
    specs = [
        (
            name,
            cls.__annotations__.get(name, "object"),
            dataclasses.field(default=defaults.get(name, dataclasses.MISSING)),
        )
        for name in cls.__slots__
    ]
    kw_only = cls.__init__.__code__.co_argcount == 1
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=True, kw_only=kw_only)


def _init_defaults(cls: type[Record]) -> dict[str, object]:
    """Parameter defaults of ``cls.__init__`` by name."""
    init = cls.__init__
    positional = init.__code__.co_varnames[1 : init.__code__.co_argcount]
    defaults = dict(init.__kwdefaults__ or {})
    tail = init.__defaults__ or ()
    defaults.update(zip(positional[len(positional) - len(tail) :], tail, strict=True))
    return defaults


class Record:
    """Base of the codec's immutable messages; subclasses list their fields in ``__slots__``."""

    __slots__: tuple[str, ...] = ()
    __match_args__: tuple[str, ...] = ()
    if TYPE_CHECKING:
        # what dataclasses.replace / fields / asdict accept (typeshed's DataclassInstance)
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    else:
        __dataclass_fields__ = _DataclassView()
        __dataclass_params__ = _DataclassView()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def replace(self, **changes: object) -> Self:
        """A copy with some fields changed, validated like a new record."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record) and other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise _frozen(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise _frozen(f"cannot delete field {name!r}")

    def __getstate__(self) -> list[object]:
        return list(self._values())

    def __setstate__(self, state: list[object]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            store(self, name, value)


def _frozen(message: str) -> AttributeError:
    """The error a frozen dataclass raises (dataclasses loads only on this error path)."""
    from dataclasses import FrozenInstanceError  # noqa: PLC0415

    return FrozenInstanceError(message)
