"""Tokenizer for ``fence_virt.conf`` (the C ``config.l``, see the parser module for deviations).

Tokens are ``{ } ; =``, identifiers (runs of characters other than blanks, newline, ``{ } ; = "``)
and double-quoted values (one or more non-quote characters, newlines allowed, no escapes).
``#`` starts a comment only where a token could start; inside a word it is part of the word.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import NamedTuple

from fence_virt.errors import ConfigError

__all__ = ["Token", "TokenKind", "tokenize"]


class TokenKind(enum.Enum):
    """What a token is; ``EOF`` ends every token list exactly once."""

    LBRACE = "'{'"
    RBRACE = "'}'"
    SEMI = "';'"
    EQUALS = "'='"
    ID = "name"
    VALUE = "value"
    EOF = "end of file"


class Token(NamedTuple):
    """One token from ``line`` to ``end_line`` (a quoted value may span lines)."""

    kind: TokenKind
    text: str
    line: int
    end_line: int

    def describe(self) -> str:
        """How an error message names this token: ``'}'``, ``name 'port'``, ``end of file``."""
        if self.kind is TokenKind.ID:
            return f"name {self.text!r}"
        if self.kind is TokenKind.VALUE:
            shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
            return f'value "{shown}"'
        return str(self.kind.value)


_PUNCTUATION = {
    "{": TokenKind.LBRACE,
    "}": TokenKind.RBRACE,
    ";": TokenKind.SEMI,
    "=": TokenKind.EQUALS,
}

# Alternatives are tried in order: a comment wins over a word starting with '#', as in flex
# where the comment rule is listed first and never matches less text than the word rule.
_SCANNER = re.compile(
    r"""
    (?P<blank>[ \t\r]+)
    | (?P<newline>\n)
    | (?P<comment>\#[^\n]*)
    | (?P<punct>[{};=])
    | (?P<value>"[^"]*")
    | (?P<quote>")
    | (?P<word>[^ \t\r\n{};="]+)
    """,
    re.VERBOSE,
)


def tokenize(text: str, *, source: str | None = None) -> Iterator[Token]:
    """Yield the tokens of ``text``, ending with one ``EOF`` token.

    Lazy, so that a parse error before a lexical one is reported first. Raises
    :class:`ConfigError` for an unterminated or empty quoted value.
    """
    line = 1
    for match in _SCANNER.finditer(text):
        group = match.lastgroup
        lexeme = match.group()
        if group == "newline":
            line += 1
        elif group == "punct":
            yield Token(_PUNCTUATION[lexeme], lexeme, line, line)
        elif group == "word":
            yield Token(TokenKind.ID, lexeme, line, line)
        elif group == "value":
            yield _value_token(lexeme, line, source)
            line += lexeme.count("\n")
        elif group == "quote":
            raise ConfigError(
                "unterminated quoted value: no closing '\"' before end of file",
                path=source,
                line=line,
            )
    yield Token(TokenKind.EOF, "", line, line)


def _value_token(lexeme: str, line: int, source: str | None) -> Token:
    body = lexeme[1:-1]
    if not body:
        raise ConfigError(
            'empty quoted value "" is not allowed (the C parser cannot read it); '
            "leave the key out instead",
            path=source,
            line=line,
        )
    return Token(TokenKind.VALUE, body, line, line + body.count("\n"))
