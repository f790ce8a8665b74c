"""Recursive-descent parser for ``fence_virt.conf``, accepting the C grammar (``config.y``)::

    stuff  := (node | assign)+
    node   := ID '{' stuff? '}'  |  ID '=' VAL '{' stuff? '}'
    assign := ID '=' VAL ';'

Lexical rules are those of ``config.l`` (see :mod:`fence_virt.config.lexer`): ``#`` comments to
end of line (also after tokens), identifiers are runs of anything but blanks, newline and
``{ } ; = "``, values are ``"..."`` with at least one character, newlines allowed, no escapes.

Deliberate deviations from the C parser (every file C accepts is accepted with the same
meaning, except where noted):

* **CRLF**: ``\\r`` is a blank between tokens. C makes it part of identifiers, so a CRLF file
  fails there (or defines a key named ``"}\\r"``). Inside a quoted value it is kept verbatim.
* **Empty file**: an empty or comments-only file is an empty configuration. C reports a syntax
  error because ``stuff`` needs at least one item. (The daemon still fails later for want of
  ``fence_virtd/@listener``, with a clearer message.)
* **Line numbers** count the newlines inside multi-line quoted values; C's counter skips them,
  so its line numbers drift after such a value.
* **Stray quote**: a ``"`` with no closing quote is an error naming the line where it starts.
  flex echoes an unmatched ``"`` to stdout and carries on, which C sometimes survives
  (e.g. a lone ``"`` at the end of the file).
* **Empty value** ``""`` is rejected with its own message (C has no token for it either and
  fails with a generic syntax error after echoing the quotes).
* **Nesting** deeper than :data:`MAX_DEPTH` blocks is an error (C's bison stack allows more,
  no real file comes close).
* **Messages** name ``file:line``, what was expected and what was found, instead of
  ``syntax error on line N``.
* **Encoding**: :func:`load_file` decodes UTF-8 with ``surrogateescape``, so any byte
  sequence survives as C would keep it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from fence_virt.config.lexer import Token, TokenKind, tokenize
from fence_virt.config.tree import ConfigNode, ConfigTree, ConfigValue
from fence_virt.errors import ConfigError

__all__ = ["MAX_DEPTH", "load_file", "parse_text"]

#: deepest block nesting accepted (real files use 3)
MAX_DEPTH = 100


def load_file(path: str | os.PathLike[str]) -> ConfigTree:
    """Read and parse the file at ``path``; any failure is a :class:`ConfigError`."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8", errors="surrogateescape", newline="") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", path=source) from exc
    return parse_text(text, source=source)


def parse_text(text: str, *, source: str | None = None) -> ConfigTree:
    """Parse configuration text; ``source`` names the file in errors and in the tree."""
    parser = _Parser(tokenize(text, source=source), source)
    children, values = parser.parse_items(opener=None, depth=0)
    return ConfigTree(children=children, values=values, source=source)


class _Parser:
    """Pulls tokens one at a time; ``tokens`` ends with one EOF token, which then repeats."""

    def __init__(self, tokens: Iterator[Token], source: str | None) -> None:
        self._tokens = tokens
        self._eof: Token | None = None
        self._source = source

    def _next(self) -> Token:
        if self._eof is not None:
            return self._eof
        token = next(self._tokens)
        if token.kind is TokenKind.EOF:
            self._eof = token
        return token

    def _error(self, message: str, line: int) -> ConfigError:
        return ConfigError(message, path=self._source, line=line)

    def _expected(self, what: str, after: Token, found: Token) -> ConfigError:
        """``expected X after Y, found Z``, reported at the line of ``after``."""
        where = "" if found.line == after.end_line else f" on line {found.line}"
        return self._error(f"expected {what}, found {found.describe()}{where}", after.end_line)

    def parse_items(
        self, opener: Token | None, depth: int
    ) -> tuple[tuple[ConfigNode, ...], tuple[ConfigValue, ...]]:
        """``stuff?`` up to the ``}`` closing the block named by ``opener`` (top level: EOF)."""
        closer = TokenKind.EOF if opener is None else TokenKind.RBRACE
        children: list[ConfigNode] = []
        values: list[ConfigValue] = []
        while True:
            token = self._next()
            if token.kind is closer:
                return tuple(children), tuple(values)
            if token.kind is not TokenKind.ID:
                raise self._unexpected(token, opener)
            item = self._parse_item(token, depth)
            if isinstance(item, ConfigNode):
                children.append(item)
            else:
                values.append(item)

    def _unexpected(self, token: Token, opener: Token | None) -> ConfigError:
        if token.kind is TokenKind.EOF and opener is not None:
            return self._error(
                f"block {opener.text!r} is never closed: expected '}}', found end of file "
                f"(line {token.line})",
                opener.line,
            )
        if token.kind is TokenKind.RBRACE:
            return self._error("unexpected '}': no block is open", token.line)
        return self._error(
            f"expected a name to start a 'key = \"value\";' or a block, found {token.describe()}",
            token.line,
        )

    def _parse_item(self, name: Token, depth: int) -> ConfigNode | ConfigValue:
        """After ``ID``: ``'{' ...``, ``'=' VAL ';'`` or ``'=' VAL '{' ...``."""
        token = self._next()
        if token.kind is TokenKind.LBRACE:
            return self._parse_block(name, None, depth)
        if token.kind is not TokenKind.EQUALS:
            raise self._expected(f"'=' or '{{' after {name.text!r}", name, token)
        value = self._next()
        if value.kind is not TokenKind.VALUE:
            raise self._expected_value(name, token, value)
        token = self._next()
        if token.kind is TokenKind.SEMI:
            return ConfigValue(name.text, value.text, line=name.line)
        if token.kind is TokenKind.LBRACE:
            return self._parse_block(name, value.text, depth)
        raise self._expected(f"';' after value of {name.text!r}{_span_hint(value)}", value, token)

    def _expected_value(self, name: Token, equals: Token, found: Token) -> ConfigError:
        what = f"a quoted value after '{name.text} ='"
        if found.kind is TokenKind.ID:
            what += " (values must be in double quotes)"
        return self._expected(what, equals, found)

    def _parse_block(self, name: Token, value: str | None, depth: int) -> ConfigNode:
        if depth >= MAX_DEPTH:
            raise self._error(f"blocks nested more than {MAX_DEPTH} deep", name.line)
        children, values = self.parse_items(name, depth + 1)
        return ConfigNode(name.text, value, children, values, line=name.line, source=self._source)


def _span_hint(value: Token) -> str:
    """Point at a probable missing quote when the offending value spans several lines."""
    if value.line == value.end_line:
        return ""
    return f" (quoted from line {value.line} to {value.end_line}: is a '\"' missing?)"
