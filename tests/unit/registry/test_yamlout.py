"""The fast YAML emitter reads back, through PyYAML's safe loader, as exactly what went in."""

from __future__ import annotations

import pytest
import yaml

from registry.knative.yamlout import dump_all

TRICKY = [
    "",
    " leading",
    "trailing ",
    "a: b",
    "#comment",
    "yes",
    "No",
    "on",
    "null",
    "~",
    "0.1.0",
    "1e3",
    "0x1F",
    "123",
    "-1",
    "- item",
    "multi\nline",
    "tab\there",
    'quote"s',
    "back\\slash",
    "ünïcödé ✓",
    "{x}",
    "[y]",
    "*alias",
    "&anchor",
    "!tag",
    "%directive",
    "@at",
    "`tick`",
    "http://a.b/c?d=e&f",
    "key:",
    ":",
    "---",
    "...",
]


def test_round_trip_of_awkward_values() -> None:
    docs = [
        {"strings": TRICKY, "keys": {s: s for s in TRICKY if s}},
        {"numbers": [0, -1, 1.5, 10**12], "flags": [True, False, None], "empty": {"d": {}, "l": []}},
        {"nested": [{"a": [{"b": {"c": [1, [2, [3]]]}}], "d": "e"}, [], {}]},
        ["top", "level", {"list": True}],
        "scalar",
    ]
    assert list(yaml.safe_load_all(dump_all(docs))) == docs


def test_refuses_what_is_not_plain_data() -> None:
    with pytest.raises(TypeError):
        dump_all([{"x": object()}])
