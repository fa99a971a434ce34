"""A documented subset of CloudEvents SQL (CESQL v1) for Trigger `filters: [{cesql: ...}]`.

Supported: string ('..' or ".."), integer and boolean literals; attribute names; `AND`, `OR`,
`XOR`, `NOT`; `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`; `[NOT] LIKE` with `%` and `_`;
`EXISTS attr`; `[NOT] IN (v, ...)`; parentheses; `LOWER`, `UPPER`, `LENGTH`, `CONCAT`.
Comparisons cast a string to the other side's type as CESQL does (a failed cast is an error).
AND/OR short-circuit; an evaluation error (missing attribute, failed cast) makes the filter not
match, as in Knative.
Anything else (arithmetic, other functions) is refused at validation with `UnsupportedCesql`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Value = str | int | bool
Node = Callable[[dict[str, str]], Value]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)|(?P<str>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\")"
    r"|(?P<op><>|!=|<=|>=|[=<>(),-])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE"}
_FUNCTIONS: dict[str, tuple[int | None, Callable[..., Value]]] = {
    "LOWER": (1, lambda s: _as_str(s).lower()),
    "UPPER": (1, lambda s: _as_str(s).upper()),
    "LENGTH": (1, lambda s: len(_as_str(s))),
    "CONCAT": (None, lambda *parts: "".join(_as_str(p) for p in parts)),
}


class UnsupportedCesql(ValueError):
    """The expression is not valid CESQL or uses something outside the supported subset."""


class EvaluationError(Exception):
    """An attribute is missing or a value cannot be cast; the filter does not match."""


def _as_str(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_int(value: Value) -> int:
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except ValueError:
        raise EvaluationError(f"cannot cast {value!r} to integer") from None


def _as_bool(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise EvaluationError(f"cannot cast {value!r} to boolean")


def _coerce(left: Value, right: Value) -> tuple[Value, Value]:
    """Cast to a common type: the non-string side decides, as CESQL's implicit casts do."""
    for typed in (left, right):
        if isinstance(typed, bool):
            return _as_bool(left), _as_bool(right)
    if isinstance(left, int) or isinstance(right, int):
        return _as_int(left), _as_int(right)
    return left, right


def _like(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise UnsupportedCesql(f"unexpected character at {pos}: {text[pos:pos + 10]!r}")
            kind = match.lastgroup or ""
            value = match.group(kind)
            if kind == "word" and value.upper() in _KEYWORDS | set(_FUNCTIONS):
                kind, value = "kw", value.upper()
            self.tokens.append((kind, value))
            pos = match.end()
        self.i = 0

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        return value is None or self.tokens[self.i][1] == value

    def take(self, value: str | None = None) -> tuple[str, str]:
        if not self.peek(value):
            found = self.tokens[self.i][1] if self.i < len(self.tokens) else "end of expression"
            raise UnsupportedCesql(f"expected {value or 'a value'}, found {found!r}")
        self.i += 1
        return self.tokens[self.i - 1]

    def parse(self) -> Node:
        node = self.or_()
        if self.i != len(self.tokens):
            raise UnsupportedCesql(f"unsupported or unexpected {self.tokens[self.i][1]!r}")
        return node

    def _binary(self, word: str, sub: Callable[[], Node], combine: Callable[[bool, Node, Any], bool]) -> Node:
        node = sub()
        while self.peek(word):
            self.take(word)
            node = _logical(combine, node, sub())
        return node

    # AND and OR short-circuit: `NOT EXISTS x OR x = 1` never evaluates a missing x.
    def or_(self) -> Node:
        return self._binary("OR", self.xor, lambda a, b, ev: a or _as_bool(b(ev)))

    def xor(self) -> Node:
        return self._binary("XOR", self.and_, lambda a, b, ev: a != _as_bool(b(ev)))

    def and_(self) -> Node:
        return self._binary("AND", self.not_, lambda a, b, ev: a and _as_bool(b(ev)))

    def not_(self) -> Node:
        if self.peek("NOT"):
            self.take("NOT")
            inner = self.not_()
            return lambda ev: not _as_bool(inner(ev))
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        negate = False
        if self.peek("NOT"):
            self.take("NOT")
            negate = True
            if not (self.peek("LIKE") or self.peek("IN")):
                raise UnsupportedCesql("NOT here must be followed by LIKE or IN")
        if self.peek("LIKE"):
            self.take("LIKE")
            kind, raw = self.take()
            if kind != "str":
                raise UnsupportedCesql("LIKE needs a string literal pattern")
            pattern = _like(_unquote(raw))
            return lambda ev: negate != bool(pattern.fullmatch(_as_str(left(ev))))
        if self.peek("IN"):
            self.take("IN")
            options = self._parenthesized(self.operand)
            return lambda ev: negate != any(_eq(left(ev), o(ev)) for o in options)
        if self.i < len(self.tokens) and self.tokens[self.i][1] in _COMPARE:
            op = _COMPARE[self.take()[1]]
            right = self.operand()
            return lambda ev: op(*_coerce(left(ev), right(ev)))
        return left

    def operand(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            return _constant(int(value))
        if value == "-" and self.peek() and self.tokens[self.i][0] == "num":
            return _constant(-int(self.take()[1]))
        if kind == "str":
            return _constant(_unquote(value))
        if value in ("TRUE", "FALSE"):
            return _constant(value == "TRUE")
        if value == "EXISTS":
            name = self._identifier()
            return lambda ev: name in ev
        if value in _FUNCTIONS:
            return self._call(value)
        if value == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind == "word":
            if self.peek("("):
                supported = ", ".join(_FUNCTIONS)
                raise UnsupportedCesql(f"unsupported CESQL function {value.upper()} (supported: {supported})")
            name = value.lower()
            return lambda ev: _attribute(ev, name)
        raise UnsupportedCesql(f"unsupported CESQL: {value!r} (see eventing/cesql.py for the subset)")

    def _identifier(self) -> str:
        kind, value = self.take()
        if kind != "word":
            raise UnsupportedCesql(f"expected an attribute name, found {value!r}")
        return value.lower()

    def _parenthesized(self, item: Callable[[], Node]) -> list[Node]:
        """`( item, item, ... )`: an IN list or function arguments."""
        self.take("(")
        items = [item()]
        while self.peek(","):
            self.take(",")
            items.append(item())
        self.take(")")
        return items

    def _call(self, name: str) -> Node:
        arity, fn = _FUNCTIONS[name]
        args = self._parenthesized(self.or_)
        if arity is not None and len(args) != arity:
            raise UnsupportedCesql(f"{name} takes {arity} argument(s), got {len(args)}")
        return lambda ev: fn(*(a(ev) for a in args))


def _constant(value: Value) -> Node:
    return lambda ev: value


def _logical(combine: Callable[[bool, Node, Any], bool], left: Node, right: Node) -> Node:
    return lambda ev: combine(_as_bool(left(ev)), right, ev)


def _unquote(raw: str) -> str:
    quote = raw[0]
    body = raw[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def _attribute(ev: dict[str, str], name: str) -> str:
    if name not in ev:
        raise EvaluationError(f"missing attribute {name}")
    return ev[name]


def _eq(left: Value, right: Value) -> bool:
    a, b = _coerce(left, right)
    return a == b


def compile_expression(text: str) -> Callable[[dict[str, str]], bool]:
    """Parse `text` once; the result maps event attributes (wire strings) to match / no match."""
    if not text.strip():
        raise UnsupportedCesql("empty CESQL expression")
    node = _Parser(text).parse()

    def matches(attributes: dict[str, str]) -> bool:
        try:
            return _as_bool(node(attributes))
        except EvaluationError:
            return False

    return matches
