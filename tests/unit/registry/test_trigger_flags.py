"""`par trigger create`'s filter flags become the request's `filters` as Knative spells them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from registry.commands.triggers import describe_filters, filters_from_flags


def test_only_filter_flags_give_kns_exact_attribute_mapping() -> None:
    assert filters_from_flags(["type=order.created", "source=/shop"], [], [], [], None) == {
        "type": "order.created", "source": "/shop"}


def test_dialect_flags_and_a_file_give_knatives_filters_list(tmp_path: Path) -> None:
    more = tmp_path / "filters.yaml"
    more.write_text("- not: {exact: {source: /test}}\n"
                    "- any: [{suffix: {type: .created}}, {cesql: \"tier = 'gold'\"}]\n")
    got = filters_from_flags(["tier=gold"], ["type=order."], ["type=.v1"], ["source LIKE '/shop/%'"], more)
    assert got == [
        {"exact": {"tier": "gold"}},
        {"prefix": {"type": "order."}},
        {"suffix": {"type": ".v1"}},
        {"cesql": "source LIKE '/shop/%'"},
        {"not": {"exact": {"source": "/test"}}},
        {"any": [{"suffix": {"type": ".created"}}, {"cesql": "tier = 'gold'"}]},
    ]
    assert describe_filters(got[:4]) == (
        "exact(tier=gold),prefix(type=order.),suffix(type=.v1),cesql(source LIKE '/shop/%')")
    assert describe_filters(got[4:5]) == 'not({"exact":{"source":"/test"}})'


@pytest.mark.parametrize("content", ["{not: a list}", "- [unclosed"])
def test_a_filters_file_that_is_not_a_list_is_a_usage_error(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    with pytest.raises(typer.BadParameter):
        filters_from_flags([], [], [], [], bad)


def test_a_flag_without_equals_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter):
        filters_from_flags([], ["type"], [], [], None)
