"""CloudEvents SQL (CESQL v1) for Trigger `filters: [{cesql: ...}]`, complete against the CESQL test kit.

The parser is hand-written (Pratt, precedence climbing), not a library: CESQL is a single
expression rule whose operators differ only in binding power, so the grammar is the `_BINDING`
table below, which reads line by line against the spec's precedence list (3.6). A parser
library would add a dependency and still need custom code for what makes CESQL's lexer
unusual (case-insensitive keywords, signs glued to integer literals, `\\'` escapes) and for
refusals that name the column.

Where the spec text is silent or ambiguous, the behaviour is that of the reference grammar and
sdk-go's `sql/v2`, which Knative runs, so a Trigger filters the same events on both brokers:
- AND, OR and XOR share one level and group to the right (`a AND b OR c` is `a AND (b OR c)`);
  NOT and unary minus bind tighter than any operator (`NOT a = b` is `(NOT a) = b`); LIKE and IN
  bind tighter than arithmetic. A sign glued to digits is part of the literal: `x -1` is refused,
  `x - 1` subtracts.
- Only `\\'` (in '...') and `\\"` (in "...") are string escapes; a doubled quote is one quote;
  any other backslash stays, so LIKE sees `\\%` and `\\_` (its only escapes).
- `=`, `!=`, `<>` cast the left operand to the right one's type, IN casts the set to the left
  one's; an Integer becomes a Boolean only through BOOL() (`NOT 10` is a cast error, as the kit
  says). Integers are 32-bit and wrap on overflow.

Errors (spec 3.3 and 4.1, fail-fast mode): an operation whose operand failed yields the zero
value of its own type with that error; an operation that fails itself (a cast, a division by
zero, a function error) yields its own result with the error (`NOT 10` is true, `ABS(-2147483648)`
is 2147483647). A filter matches only a result that casts to boolean true without any error
(spec 1.2). What cannot run at all (a parse error, a function no definition answers) is refused
when the Trigger is made, naming the column.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

Value = bool | int | str
Attributes = Mapping[str, Value]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_ZERO: dict[type, Value] = {bool: False, int: 0, str: ""}
_TYPE_NAMES = {bool: "Boolean", int: "Integer", str: "String"}
# Unicode White_Space, what TRIM removes (spec 3.5.1); str.strip() would also drop \x1c-\x1f.
_WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


class Kind(StrEnum):
    """The spec's error types (3.3), spelled as the test kit names them."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    MISSING_ATTRIBUTE = "missingAttribute"


class UnsupportedCesql(ValueError):
    """The expression cannot run: not CESQL, or a call no function answers. `column` counts from 1."""

    def __init__(self, message: str, column: int, kind: Kind = Kind.PARSE) -> None:
        super().__init__(f"{message} at column {column}")
        self.column = column
        self.kind = kind


class EvaluationError(Exception):
    """An evaluation error; `value` is the result the failing operation itself gave."""

    def __init__(self, kind: Kind, message: str, value: Value, node: _Node | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value
        self.node = node  # the operation that failed


class _Fault(Exception):
    """A built-in function's error, turned into an `EvaluationError` by its call."""

    def __init__(self, kind: Kind, message: str, value: Value) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def cast(value: Value, target: type, explicit: bool = False) -> tuple[Value, str | None]:
    """Spec 3.7: the cast value, or the target's zero value and why it failed.

    Integer to Boolean is an explicit cast only (BOOL); implicitly it fails, as the kit's `NOT 10`.
    """
    if type(value) is target:
        return value, None
    if target is str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value), None
    if target is int:
        if isinstance(value, bool):
            return int(value), None
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value) and _INT_MIN <= int(value) <= _INT_MAX:
            return int(value), None
    elif isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true", None
    elif explicit:
        return value != 0, None
    source = _TYPE_NAMES.get(type(value), type(value).__name__)
    return _ZERO[target], f"cannot cast {source} {value!r} to {_TYPE_NAMES[target]}"


def _wrap(number: int) -> int:
    """32-bit two's complement, as the reference implementations overflow."""
    return (number - _INT_MIN) % 2**32 + _INT_MIN


def _divide(a: int, b: int) -> int:
    """Truncated division (rounds towards zero); 0 for a zero divisor, whose error the caller raises."""
    if b == 0:
        return 0
    quotient = abs(a) // abs(b)
    return _wrap(quotient if (a < 0) == (b < 0) else -quotient)


def _remainder(a: int, b: int) -> int:
    """The remainder of the truncated division: it has the dividend's sign."""
    if b == 0:
        return 0
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


# --- the expression tree -----------------------------------------------------------------------


class _Node:
    returns: type = bool  # the static result type; its zero value is the result when an operand fails

    def eval(self, event: Attributes) -> Value:
        raise NotImplementedError

    def fail(self, kind: Kind, message: str, value: Value) -> EvaluationError:
        return EvaluationError(kind, message, value, self)

    def finish(self, result: Value, cast_problem: str | None) -> Value:
        """The result, or a cast error carrying it (computed with the failed cast's zero value)."""
        if cast_problem:
            raise self.fail(Kind.CAST, cast_problem, result)
        return result


class _Literal(_Node):
    def __init__(self, value: Value) -> None:
        self.value = value
        self.returns = type(value)

    def eval(self, event: Attributes) -> Value:
        return self.value


class _Attribute(_Node):
    """An attribute's type is unknown until it is read; the spec says to assume Boolean (3.2)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def eval(self, event: Attributes) -> Value:
        try:
            return event[self.name]
        except KeyError:
            message = f"the event has no attribute {self.name!r}"
            raise self.fail(Kind.MISSING_ATTRIBUTE, message, False) from None


class _Exists(_Node):
    def __init__(self, name: str) -> None:
        self.name = name

    def eval(self, event: Attributes) -> Value:
        return self.name in event


class _Not(_Node):
    def __init__(self, operand: _Node) -> None:
        self.operand = operand

    def eval(self, event: Attributes) -> Value:
        value, problem = cast(self.operand.eval(event), bool)
        return self.finish(not value, problem)


class _Negate(_Node):
    returns = int

    def __init__(self, operand: _Node) -> None:
        self.operand = operand

    def eval(self, event: Attributes) -> Value:
        value, problem = cast(self.operand.eval(event), int)
        return self.finish(_wrap(-int(value)), problem)


_INTEGER_OPERATORS: dict[str, tuple[type, Callable[[int, int], Value]]] = {
    "*": (int, lambda a, b: _wrap(a * b)),
    "/": (int, _divide),
    "%": (int, _remainder),
    "+": (int, lambda a, b: _wrap(a + b)),
    "-": (int, lambda a, b: _wrap(a - b)),
    "<": (bool, operator.lt),
    "<=": (bool, operator.le),
    ">": (bool, operator.gt),
    ">=": (bool, operator.ge),
}


class _IntegerOperator(_Node):
    """Arithmetic and ordering: both operands cast to Integer."""

    def __init__(self, symbol: str, left: _Node, right: _Node) -> None:
        self.symbol, self.left, self.right = symbol, left, right
        self.returns, self.apply = _INTEGER_OPERATORS[symbol]

    def eval(self, event: Attributes) -> Value:
        a, left_problem = cast(self.left.eval(event), int)
        b, right_problem = cast(self.right.eval(event), int)
        problem = left_problem or right_problem
        result = self.apply(int(a), int(b))
        if b == 0 and self.symbol in ("/", "%") and not problem:
            raise self.fail(Kind.MATH, f"{'division' if self.symbol == '/' else 'modulo'} by zero", result)
        return self.finish(result, problem)


class _Equality(_Node):
    """`=` is defined for each type: the right operand's type decides the cast (spec 3.7)."""

    def __init__(self, equal: bool, left: _Node, right: _Node) -> None:
        self.equal, self.left, self.right = equal, left, right

    def eval(self, event: Attributes) -> Value:
        left = self.left.eval(event)
        right = self.right.eval(event)
        left, problem = cast(left, type(right))
        return self.finish((left == right) is self.equal, problem)


class _Logic(_Node):
    """AND and OR short-circuit (spec 3.4.2); XOR needs both sides."""

    def __init__(self, word: str, left: _Node, right: _Node) -> None:
        self.word, self.left, self.right = word, left, right

    def eval(self, event: Attributes) -> Value:
        left, problem = cast(self.left.eval(event), bool)
        if (self.word == "AND" and not left) or (self.word == "OR" and left):
            return self.finish(left, problem)
        right, right_problem = cast(self.right.eval(event), bool)
        return self.finish(left != right if self.word == "XOR" else right, problem or right_problem)


class _LikePattern:
    """`%` any run, `_` one character, `\\%` and `\\_` themselves; every other character itself.

    The pattern is split at each `%` into fixed-width pieces placed leftmost in turn, so no input
    can make matching backtrack (a regular expression of `.*` runs could).
    """

    def __init__(self, pattern: str) -> None:
        pieces: list[list[str]] = [[]]
        i = 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and pattern[i + 1 : i + 2] in ("%", "_"):
                pieces[-1].append(re.escape(pattern[i + 1]))
                i += 2
                continue
            if char == "%":
                pieces.append([])
            else:
                pieces[-1].append("." if char == "_" else re.escape(char))
            i += 1
        self.widths = [len(piece) for piece in pieces]
        self.pieces = [re.compile("".join(piece), re.DOTALL) for piece in pieces]

    def matches(self, text: str) -> bool:
        if len(self.pieces) == 1:
            return self.pieces[0].fullmatch(text) is not None
        first, *middle, last = self.pieces
        if first.match(text) is None:
            return False
        position = self.widths[0]
        for piece in middle:
            found = piece.search(text, position)
            if found is None:
                return False
            position = found.end()
        start = len(text) - self.widths[-1]
        return start >= position and last.fullmatch(text, start) is not None


class _Like(_Node):
    def __init__(self, operand: _Node, pattern: _LikePattern) -> None:
        self.operand, self.pattern = operand, pattern

    def eval(self, event: Attributes) -> Value:
        text, _ = cast(self.operand.eval(event), str)  # every value has a String form
        return self.pattern.matches(str(text))


class _In(_Node):
    """Equality with each member, cast to the left value's type; stops at the first match."""

    def __init__(self, operand: _Node, members: list[_Node]) -> None:
        self.operand, self.members = operand, members

    def eval(self, event: Attributes) -> Value:
        left = self.operand.eval(event)
        problem = None
        for member in self.members:
            value, member_problem = cast(member.eval(event), type(left))
            problem = problem or member_problem
            if value == left:
                return self.finish(True, problem)
        return self.finish(False, problem)


@dataclass(frozen=True)
class _Function:
    fixed: tuple[type | None, ...]  # parameter types; None takes any type (the casting functions)
    rest: type | None  # the type of the variadic tail, None when there is none
    returns: type
    run: Callable[..., Value]

    def accepts(self, count: int) -> bool:
        return count == len(self.fixed) or (self.rest is not None and count > len(self.fixed))

    def parameter(self, index: int) -> type | None:
        return self.fixed[index] if index < len(self.fixed) else self.rest


class _Call(_Node):
    def __init__(self, function: _Function, arguments: list[_Node]) -> None:
        self.function, self.arguments = function, arguments
        self.returns = function.returns

    def eval(self, event: Attributes) -> Value:
        values: list[Value] = []
        problem = None
        for index, argument in enumerate(self.arguments):
            value = argument.eval(event)
            target = self.function.parameter(index)
            if target is not None:
                value, argument_problem = cast(value, target)
                problem = problem or argument_problem
            values.append(value)
        try:
            result = self.function.run(*values)
        except _Fault as fault:
            if problem is None:
                raise self.fail(fault.kind, str(fault), fault.value) from None
            result = fault.value
        return self.finish(result, problem)


class _MissingFunction(_Node):
    """A call no definition answers: false and a MissingFunctionError (spec 3.5)."""

    def __init__(self, name: str, count: int) -> None:
        self.message = f"no function {name} takes {count} argument{'' if count == 1 else 's'}"

    def eval(self, event: Attributes) -> Value:
        raise self.fail(Kind.MISSING_FUNCTION, self.message, False)


# --- built-in functions (spec 3.5) ---------------------------------------------------------------


def _explicit_cast(target: type) -> Callable[[Value], Value]:
    def run(value: Value) -> Value:
        result, problem = cast(value, target, explicit=True)
        if problem:
            raise _Fault(Kind.CAST, problem, result)
        return result

    return run


def _abs(number: int) -> int:
    if number == _INT_MIN:
        raise _Fault(Kind.MATH, "ABS(-2147483648) does not fit in 32 bits", _INT_MAX)
    return abs(number)


def _left(text: str, count: int) -> str:
    if count < 0:
        raise _Fault(Kind.FUNCTION_EVALUATION, f"LEFT needs a count >= 0, got {count}", text)
    return text[:count]


def _right(text: str, count: int) -> str:
    if count < 0:
        raise _Fault(Kind.FUNCTION_EVALUATION, f"RIGHT needs a count >= 0, got {count}", text)
    return text[max(len(text) - count, 0) :]


def _substring(text: str, position: int, length: int | None = None) -> str:
    """Positions count from 1, negative ones from the end; 0 gives the empty string."""
    if length is not None and length < 0:
        raise _Fault(Kind.FUNCTION_EVALUATION, f"SUBSTRING needs a length >= 0, got {length}", "")
    if position == 0:
        return ""
    if not -len(text) <= position <= len(text):
        raise _Fault(Kind.FUNCTION_EVALUATION, f"SUBSTRING position {position} is outside {text!r}", "")
    start = len(text) + position if position < 0 else position - 1
    return text[start:] if length is None else text[start : start + length]


_FUNCTIONS: dict[str, list[_Function]] = {
    "LENGTH": [_Function((str,), None, int, len)],
    "CONCAT": [_Function((), str, str, lambda *parts: "".join(parts))],
    "CONCAT_WS": [_Function((str,), str, str, lambda separator, *parts: separator.join(parts))],
    "LOWER": [_Function((str,), None, str, str.lower)],
    "UPPER": [_Function((str,), None, str, str.upper)],
    "TRIM": [_Function((str,), None, str, lambda text: text.strip(_WHITESPACE))],
    "LEFT": [_Function((str, int), None, str, _left)],
    "RIGHT": [_Function((str, int), None, str, _right)],
    "SUBSTRING": [
        _Function((str, int), None, str, _substring),
        _Function((str, int, int), None, str, _substring),
    ],
    "ABS": [_Function((int,), None, int, _abs)],
    "INT": [_Function((None,), None, int, _explicit_cast(int))],
    "BOOL": [_Function((None,), None, bool, _explicit_cast(bool))],
    "STRING": [_Function((None,), None, str, _explicit_cast(str))],
}


# --- lexer and parser --------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # int, str, word, op, end
    text: str
    column: int

    @property
    def key(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text if self.kind == "op" else ""

    def describe(self) -> str:
        return "the end of the expression" if self.kind == "end" else repr(self.text)


_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<str>'(?:\\.|''|[^'\\])*'|\"(?:\\.|\"\"|[^\"\\])*\")"
    r"|(?P<int>[+-][0-9]+)"  # a sign glued to digits is part of the literal, as in CESQL's lexer
    r"|(?P<word>[A-Za-z0-9_]+)"
    r"|(?P<op><>|!=|<=|>=|[-=<>()+*/%,])",
    re.DOTALL,
)
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9]+")
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z_]*")
_KEYWORDS = {"AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE"}
_ESCAPES = {quote: re.compile(rf"\\(.)|{quote}{quote}", re.DOTALL) for quote in "'\""}

# Binding power, loosest first: spec 3.6's list read bottom-up.
_LOGIC, _COMPARISON, _ADDITIVE, _MULTIPLICATIVE, _IN, _LIKE, _UNARY = 10, 20, 30, 40, 50, 60, 70
_BINDING = {
    **dict.fromkeys(("AND", "OR", "XOR"), _LOGIC),
    **dict.fromkeys(("=", "!=", "<>", "<", "<=", ">", ">="), _COMPARISON),
    **dict.fromkeys(("+", "-"), _ADDITIVE),
    **dict.fromkeys(("*", "/", "%"), _MULTIPLICATIVE),
    "IN": _IN,
    "LIKE": _LIKE,
}


def _tokens(text: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            what = "an unterminated string" if text[position] in "'\"" else f"unexpected {text[position]!r}"
            raise UnsupportedCesql(what, position + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            word = match.group()
            tokens.append(_Token("int" if kind == "word" and word.isdigit() else kind, word, position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _unquote(literal: str) -> str:
    quote = literal[0]
    return _ESCAPES[quote].sub(lambda m: quote if m.group(1) in (None, quote) else m.group(), literal[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.unresolved: list[UnsupportedCesql] = []

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.advance()
        if token.key != text:
            raise UnsupportedCesql(f"expected {text!r}, found {token.describe()}", token.column)

    def whole(self) -> _Node:
        node = self.expression(0)
        token = self.peek()
        if token.kind != "end":
            glued = token.kind == "int" and token.text[0] in "+-"
            hint = " (a sign glued to digits makes a literal: write `- 1` to subtract)" if glued else ""
            raise UnsupportedCesql(f"unexpected {token.describe()}{hint}", token.column)
        return node

    def expression(self, floor: int) -> _Node:
        """Everything that binds tighter than `floor` (precedence climbing)."""
        left = self.prefix()
        while True:
            token = self.peek()
            negated = token.key == "NOT"
            key = self.peek(1).key if negated else token.key
            if negated and key not in ("LIKE", "IN"):
                raise UnsupportedCesql("NOT after a value must be followed by LIKE or IN", token.column)
            power = _BINDING.get(key) if token.kind in ("word", "op") else None
            if power is None or power <= floor:
                return left
            self.index += 2 if negated else 1
            if key == "LIKE":
                left = _Like(left, self.like_pattern())
            elif key == "IN":
                left = _In(left, self.arguments(allow_empty=False))
            else:
                # AND, OR and XOR group to the right, the others to the left.
                left = _binary(key, left, self.expression(power - 1 if power == _LOGIC else power))
            if negated:
                left = _Not(left)

    def prefix(self) -> _Node:
        token = self.advance()
        if token.kind == "int":
            number = int(token.text)
            if not _INT_MIN <= number <= _INT_MAX:
                raise UnsupportedCesql(f"{token.text} is not a 32-bit integer", token.column)
            return _Literal(number)
        if token.kind == "str":
            return _Literal(_unquote(token.text))
        if token.key == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        if token.key == "-":
            return _Negate(self.expression(_UNARY))
        if token.key == "NOT":
            return _Not(self.expression(_UNARY))
        if token.key in ("TRUE", "FALSE"):
            return _Literal(token.key == "TRUE")
        if token.key == "EXISTS":
            return _Exists(self.attribute_name(self.advance()))
        if token.kind == "word" and token.key not in _KEYWORDS:
            if self.peek().key == "(":
                return self.call(token)
            return _Attribute(self.attribute_name(token))
        raise UnsupportedCesql(f"expected a value, found {token.describe()}", token.column)

    def attribute_name(self, token: _Token) -> str:
        if token.kind != "word" or token.key in _KEYWORDS or not _ATTRIBUTE_NAME.fullmatch(token.text):
            raise UnsupportedCesql(
                f"expected an attribute name (letters and digits), found {token.describe()}", token.column
            )
        return token.text.lower()

    def like_pattern(self) -> _LikePattern:
        token = self.advance()
        if token.kind != "str":
            message = f"LIKE needs a string literal pattern, found {token.describe()}"
            raise UnsupportedCesql(message, token.column)
        return _LikePattern(_unquote(token.text))

    def arguments(self, allow_empty: bool) -> list[_Node]:
        """`( expression, ... )`: function arguments or an IN set (never empty)."""
        self.expect("(")
        if allow_empty and self.peek().key == ")":
            self.index += 1
            return []
        items = [self.expression(0)]
        while self.peek().key == ",":
            self.index += 1
            items.append(self.expression(0))
        self.expect(")")
        return items

    def call(self, token: _Token) -> _Node:
        if not _FUNCTION_NAME.fullmatch(token.text):
            raise UnsupportedCesql(f"{token.text!r} is not a function name", token.column)
        name = token.text.upper()
        arguments = self.arguments(allow_empty=True)
        for function in _FUNCTIONS.get(name, []):
            if function.accepts(len(arguments)):
                return _Call(function, arguments)
        missing = _MissingFunction(name, len(arguments))
        self.unresolved.append(UnsupportedCesql(missing.message, token.column, Kind.MISSING_FUNCTION))
        return missing


def _binary(key: str, left: _Node, right: _Node) -> _Node:
    if key in _INTEGER_OPERATORS:
        return _IntegerOperator(key, left, right)
    if key in ("=", "!=", "<>"):
        return _Equality(key == "=", left, right)
    return _Logic(key, left, right)


# --- public API --------------------------------------------------------------------------------


class Expression:
    """A parsed expression. `evaluate` is total: always a value, plus the first error if one arose."""

    def __init__(self, root: _Node, unresolved: list[UnsupportedCesql]) -> None:
        self._root = root
        self.unresolved = unresolved  # calls no built-in answers; they evaluate to a MissingFunctionError

    def evaluate(self, attributes: Attributes) -> tuple[Value, EvaluationError | None]:
        try:
            return self._root.eval(attributes), None
        except EvaluationError as error:
            value = error.value if error.node is self._root else _ZERO[self._root.returns]
            return value, error


def parse(text: str) -> Expression:
    """Parse CESQL; `UnsupportedCesql` (a ParseError) names the column of what is wrong."""
    parser = _Parser(text)
    return Expression(parser.whole(), parser.unresolved)


def compile_expression(
    text: str, on_error: Callable[[EvaluationError], None] | None = None
) -> Callable[[Attributes], bool]:
    """A Trigger filter: refuses what cannot run; matches a result that casts to true, without error.

    Evaluation errors (a missing attribute, a failed cast, ...) make the event not match and are
    passed to `on_error`, as Knative counts and drops them.
    """
    expression = parse(text)
    if expression.unresolved:
        raise expression.unresolved[0]

    def matches(attributes: Attributes) -> bool:
        value, error = expression.evaluate(attributes)
        if error is None:
            value, problem = cast(value, bool)
            if problem:
                error = EvaluationError(Kind.CAST, f"the filter's result is not a Boolean: {problem}", False)
        if error is not None:
            if on_error is not None:
                on_error(error)
            return False
        return value is True

    return matches
