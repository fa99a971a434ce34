"""Any text given as a Trigger's CESQL filter is a parse error naming a column or an expression,
and evaluating an expression against any attributes gives a value: never another exception (a
Trigger filter runs on every event the dispatcher reads)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventing.cesql import UnsupportedCesql, compile_expression, parse
from tests.support.fuzzing import bounded

# Pieces of the language, so the fuzzer reaches deep into the parser rather than failing on the
# first character; and any text besides.
WORDS = ["AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE", "ABS", "CONCAT", "LENGTH",
         "LOWER", "UPPER", "TRIM", "SUBSTRING", "LEFT", "RIGHT", "BOOL", "INT", "STRING", "IS_INT",
         "type", "source", "id", "subject", "ext", "(", ")", ",", "+", "-", "*", "/", "%", "=", "!=",
         "<>", "<", "<=", ">", ">=", "'a%'", '"x"', "'", '"', "0", "1", "-2147483648", "2147483647",
         "99999999999999999999", " ", "\\", "_", "%"]
EXPRESSIONS = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=24).map(" ".join),
    st.text(max_size=64),
)
VALUES = st.one_of(st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=16))
ATTRIBUTES = st.dictionaries(st.sampled_from(["type", "source", "id", "subject", "ext"]), VALUES)
BOUNDED = bounded(800)


@BOUNDED
@given(EXPRESSIONS, ATTRIBUTES)
def test_any_text_parses_or_is_refused_and_evaluation_is_total(text: str, attributes: dict) -> None:
    try:
        expression = parse(text)
    except UnsupportedCesql as refused:
        assert refused.column >= 1
        return
    value, error = expression.evaluate(attributes)
    assert isinstance(value, bool | int | str)
    assert error is None or str(error)


@BOUNDED
@given(EXPRESSIONS, ATTRIBUTES)
def test_a_compiled_filter_answers_true_or_false_for_any_event(text: str, attributes: dict) -> None:
    try:
        matches = compile_expression(text)
    except UnsupportedCesql:
        return
    assert matches(attributes) in (True, False)
