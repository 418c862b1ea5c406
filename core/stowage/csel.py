"""CSEL, Nexus's content selector language: which content a ``repository-content-selector`` privilege covers.

Grammar (Nexus's; whitespace between tokens is free)::

    expression := disjunction
    disjunction := conjunction ("or" conjunction)*
    conjunction := term ("and" term)*
    term        := "(" expression ")" | IDENT OPERATOR STRING
    OPERATOR    := "==" (equal) | "=~" (the regular expression matches the whole value) | "=^" (starts with)
    IDENT       := format | path
    STRING      := "..." or '...', with backslash escapes

``path`` is the content's path as Nexus shows it, with a leading ``/`` (``/@cwiq/lib/-/lib-1.0.0.tgz``);
``format`` is the repository's format (``npm``). :func:`parse` turns text into a :class:`Selector`, or
raises :class:`CselError` naming what is wrong and where, so the REST API can answer a clear 400.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from attrs import frozen

#: the variables an expression may name.
VARIABLES = ("format", "path")
OPERATORS = ("==", "=~", "=^")
#: the longest expression accepted (an admin writes these; the limit keeps parsing and matching bounded).
MAX_LENGTH = 4096

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<op>==|=~|=\^)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
""", re.VERBOSE | re.DOTALL)


class CselError(ValueError):
    """The expression is not valid CSEL; ``message`` says why and at which character."""

    def __init__(self, message: str, position: int | None = None):
        self.message = message if position is None else f"{message} (at character {position + 1})"
        super().__init__(self.message)


@frozen
class Token:
    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] in "\"'":
                raise CselError("unterminated string", position)
            raise CselError(f"unexpected character {text[position]!r}", position)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body, flags=re.DOTALL)


Matcher = Callable[[Mapping[str, str]], bool]


@frozen
class Selector:
    """A parsed expression; :meth:`matches` evaluates it for one piece of content."""

    expression: str
    _matcher: Matcher

    def matches(self, *, path: str, format: str) -> bool:
        return self._matcher({"path": path, "format": format})


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token is None:
            raise CselError(f"expected {what} but the expression ended", len(self.text))
        if token.kind != kind:
            raise CselError(f"expected {what}, found {token.text!r}", token.position)
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text == word:
            self.index += 1
            return True
        return False

    def parse(self) -> Matcher:
        if not self.tokens:
            raise CselError("the expression is empty")
        matcher = self.disjunction()
        token = self.peek()
        if token is not None:
            raise CselError(f"unexpected {token.text!r}; join conditions with 'and' or 'or'", token.position)
        return matcher

    def disjunction(self) -> Matcher:
        parts = [self.conjunction()]
        while self.keyword("or"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda values: any(part(values) for part in parts)

    def conjunction(self) -> Matcher:
        parts = [self.term()]
        while self.keyword("and"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda values: all(part(values) for part in parts)

    def term(self) -> Matcher:
        token = self.peek()
        if token is not None and token.kind == "lparen":
            self.index += 1
            inner = self.disjunction()
            self.take("rparen", "')'")
            return inner
        name = self.take("word", f"a variable ({' or '.join(VARIABLES)}) or '('")
        if name.text not in VARIABLES:
            raise CselError(f"unknown variable {name.text!r}; use {' or '.join(VARIABLES)}", name.position)
        operator = self.take("op", f"an operator ({', '.join(OPERATORS)})")
        literal = self.take("string", "a quoted string")
        value = _unquote(literal.text)
        variable = name.text
        if operator.text == "==":
            return lambda values: values[variable] == value
        if operator.text == "=^":
            return lambda values: values[variable].startswith(value)
        try:
            pattern = re.compile(value)
        except re.error as error:
            raise CselError(f"invalid regular expression {value!r}: {error}", literal.position) from None
        return lambda values: pattern.fullmatch(values[variable]) is not None


def parse(text: str) -> Selector:
    """Parse ``text``; raises :class:`CselError` with a message fit for a 400 answer."""
    if not isinstance(text, str):
        raise CselError("the expression must be a string")
    if len(text) > MAX_LENGTH:
        raise CselError(f"the expression is longer than {MAX_LENGTH} characters")
    return Selector(text, _Parser(text).parse())
