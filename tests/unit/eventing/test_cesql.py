"""CESQL as a Trigger filter: what matches, what is refused when the Trigger is made, and what a
user relies on beyond the test kit (precedence as Knative parses it, errors reported)."""

import pytest
from prometheus_client import REGISTRY

from eventing.cesql import EvaluationError, Kind, UnsupportedCesql, compile_expression, parse
from eventing.objects import InvalidObject, parse_trigger
from eventing.settings import PACKAGED_CRDS

EVENT = {"type": "demo.hello", "source": "/cli", "seq": "5", "flag": "true", "subject": "it's"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("type = 'demo.hello'", True),
        ('type = "demo.other"', False),
        ("type <> 'x' AND source != '/y'", True),
        ("type LIKE 'demo.%' AND seq > 3", True),
        ("seq >= 6 OR seq <= 4", False),
        ("source LIKE '/c_i'", True),
        ("source NOT LIKE '/c_i'", False),
        # Only \% and \_ escape in a LIKE pattern: \. is a backslash then a dot (was True before).
        ("type LIKE 'demo\\.%'", False),
        ("EXISTS subject AND NOT EXISTS dataschema", True),
        ("type IN ('a', 'demo.hello')", True),
        ("type NOT IN ('a', 'b')", True),
        ("seq IN (1, 5)", True),
        ("flag = TRUE XOR seq = 5", False),
        ("LOWER(UPPER(type)) = type AND LENGTH(source) = 4", True),
        ("CONCAT(type, '-', seq) = 'demo.hello-5'", True),
        ("subject = 'it''s'", True),
        ("subject = 'it\\'s'", True),
        ("seq = -5", False),
        ("missing = 'x'", False),  # evaluation error: no match
        ("NOT EXISTS missing OR missing = 'x'", True),  # short circuit
        ("type > 3", False),  # failed cast: no match
        ("seq + 1 = 6 AND seq * 2 - 4 = 6", True),  # arithmetic (refused before)
        ("ABS(seq - 10) = 5 AND INT('7') % seq = 2", True),
        ("flag", True),  # the result is cast to Boolean, as Knative does
        ("seq", False),  # an Integer-like string is not a Boolean
        ("SUBSTRING(type, 6) = 'hello' AND LEFT(source, 2) = '/c'", True),
    ],
)
def test_expressions(expression, expected):
    assert compile_expression(expression)(EVENT) is expected


@pytest.mark.parametrize(
    ("expression", "grouped", "expected"),
    [
        # AND, OR and XOR share one level and group to the right, as the reference grammar
        # (and so Knative) parses them; standard SQL would make the first one true.
        ("FALSE AND FALSE OR TRUE", "FALSE AND (FALSE OR TRUE)", False),
        ("TRUE OR FALSE AND FALSE", "TRUE OR (FALSE AND FALSE)", True),
        # NOT binds tighter than a comparison: NOT type is a cast error, no match.
        ("NOT type = 'x'", "(NOT type) = 'x'", False),
        ("2 + 3 * 4 = 14", "(2 + (3 * 4)) = 14", True),
        ("10 - 4 - 3 = 3", "((10 - 4) - 3) = 3", True),
    ],
)
def test_precedence_is_the_reference_grammars(expression, grouped, expected):
    assert compile_expression(expression)(EVENT) is expected
    assert compile_expression(grouped)(EVENT) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("seq +", "expected a value, found the end of the expression at column 6"),
        ("type =", "end of the expression at column 7"),
        ("", "expected a value"),
        ("type LIKE seq", "LIKE needs a string literal pattern, found 'seq' at column 11"),
        ("LOWER(type, source) = 'x'", "no function LOWER takes 2 arguments at column 1"),
        ("seq = NOPE(1)", "no function NOPE takes 1 argument at column 7"),
        ("CONCAT_WS()", "no function CONCAT_WS takes 0 arguments"),
        ("(type = 'x'", "expected ')', found the end of the expression at column 12"),
        ("seq -1 = 4", "write `- 1` to subtract"),
        ("2147483648 = seq", "not a 32-bit integer"),
        ("type = 'x", "unterminated string at column 8"),
        ("type IN ()", "expected a value, found ')'"),
        ("my_ext = 'x'", "expected an attribute name"),
        ("type NOT = 'x'", "NOT after a value must be followed by LIKE or IN at column 6"),
        ("type = 'a' ;", "unexpected ';' at column 12"),
    ],
)
def test_refusals_name_the_column(expression, message):
    with pytest.raises(UnsupportedCesql, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_expression(expression)


def test_a_missing_function_is_refused_early_but_evaluates_as_the_spec_says():
    expression = parse("NOPE(seq) OR TRUE")
    assert [(e.kind, e.column) for e in expression.unresolved] == [(Kind.MISSING_FUNCTION, 1)]
    value, error = expression.evaluate(EVENT)
    assert (value, error and error.kind) == (False, Kind.MISSING_FUNCTION)


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("missing = 'x'", Kind.MISSING_ATTRIBUTE),
        ("type > 3", Kind.CAST),
        ("seq / 0 = 1", Kind.MATH),
        ("LEFT(type, -1) = ''", Kind.FUNCTION_EVALUATION),
        ("type", Kind.CAST),  # the result is no Boolean
    ],
)
def test_evaluation_errors_reach_on_error_and_do_not_match(expression, kind):
    seen: list[EvaluationError] = []
    assert compile_expression(expression, seen.append)(EVENT) is False
    assert [e.kind for e in seen] == [kind]


def test_no_error_is_reported_for_a_plain_mismatch():
    seen: list[EvaluationError] = []
    assert compile_expression("type = 'other'", seen.append)(EVENT) is False
    assert seen == []


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("abcabcabd", "%abc%abd", True),
        ("abcabcabd", "abc%abc%abc", False),
        ("a\nb", "a_b", True),  # _ is any character, a newline too
        ("a%b", "a\\%%", True),
        ("aXb", "a\\%%", False),
        ("a\\b", "a\\b", True),  # a backslash before anything but % or _ is itself
        ("x" * 5000, "%x%x%x%x%x%x%x%y", False),  # no backtracking blow-up: returns at once
    ],
)
def test_like(text, pattern, expected):
    value, error = parse(f"x LIKE '{pattern}'").evaluate({"x": text})
    assert (value, error) == (expected, None)


def test_a_triggers_evaluation_errors_are_counted_by_trigger_and_kind():
    trigger = parse_trigger({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": "cesql-errors", "namespace": "team"},
        "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9000/"},
                 "filters": [{"cesql": "tier = 'gold'"}]},
    }, PACKAGED_CRDS)
    labels = {"namespace": "team", "trigger": "cesql-errors", "error": "missingAttribute"}

    def counted() -> float:
        return REGISTRY.get_sample_value("par_eventing_filter_errors_total", labels) or 0.0

    before = counted()
    assert trigger.matcher({"type": "t"}) is False
    assert trigger.matcher({"type": "t", "tier": "gold"}) is True
    assert counted() == before + 1


def test_an_invalid_expression_refuses_the_trigger_naming_field_and_column():
    with pytest.raises(InvalidObject) as info:
        parse_trigger({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "bad", "namespace": "team"},
            "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9000/"},
                     "filters": [{"cesql": "tier = 'gold' AND"}]},
        }, PACKAGED_CRDS)
    assert info.value.field == "spec.filters[0].cesql"
    assert "at column 18" in info.value.message
