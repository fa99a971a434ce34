"""The CESQL subset: what matches, and what is refused at validation."""

import pytest

from eventing.cesql import UnsupportedCesql, compile_expression

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
        ("type LIKE 'demo\\.%'", True),
        ("EXISTS subject AND NOT EXISTS dataschema", True),
        ("type IN ('a', 'demo.hello')", True),
        ("type NOT IN ('a', 'b')", True),
        ("seq IN (1, 5)", True),
        ("flag = TRUE XOR seq = 5", False),
        ("LOWER(UPPER(type)) = type AND LENGTH(source) = 4", True),
        ("CONCAT(type, '-', seq) = 'demo.hello-5'", True),
        ("subject = 'it''s'", True),
        ("seq = -5", False),
        ("missing = 'x'", False),  # evaluation error: no match
        ("NOT EXISTS missing OR missing = 'x'", True),  # short circuit
        ("type > 3", False),  # failed cast: no match
    ],
)
def test_expressions(expression, expected):
    assert compile_expression(expression)(EVENT) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("seq + 1 = 6", "unexpected character"),
        ("ABS(seq) = 5", "unsupported CESQL function ABS"),
        ("type =", "end of expression"),
        ("", "empty"),
        ("type LIKE seq", "string literal pattern"),
        ("LOWER(type, source) = 'x'", "takes 1 argument"),
        ("(type = 'x'", r"expected \)"),
    ],
)
def test_refusals_are_clear(expression, message):
    with pytest.raises(UnsupportedCesql, match=message):
        compile_expression(expression)
