"""Every case of the CloudEvents CESQL test kit (../shared/cesql-tck, from cloudevents/spec).

Each case checks the value and the error kind together: CESQL is total, an evaluation error
comes with a value (spec 3.3). Parse errors must be refused by `parse`.
"""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventing.cesql import UnsupportedCesql, parse

TCK = Path(__file__).resolve().parents[3].parent / "shared" / "cesql-tck"
# "If absent, any valid event can be passed": the four required attributes, nothing optional.
BASE_EVENT = {"specversion": "1.0", "id": "tck-1", "source": "/tck", "type": "io.cloudevents.tck"}


class _TckLoader(yaml.SafeLoader):
    """The kit's YAML as it means it: `expression` stays text (`true`, `0` are expressions, not
    values) and timestamps stay strings (CESQL represents a Timestamp as a String)."""


_TckLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    out = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key == "expression" and isinstance(value_node, yaml.ScalarNode):
            out[key] = value_node.value
        else:
            out[key] = loader.construct_object(value_node, deep=True)
    return out


_TckLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _cases() -> list[Any]:
    if not TCK.is_dir():
        return [pytest.param(None, id="tck-missing")]
    cases = []
    for path in sorted(TCK.glob("*.yaml")):
        suite = yaml.load(path.read_text(), Loader=_TckLoader)  # a SafeLoader subclass
        for case in suite["tests"]:
            cases.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return cases


def _typed(value: Any) -> tuple[type, Any]:
    """True is not 1 here: compare types too."""
    return type(value), value


@pytest.mark.parametrize("case", _cases())
def test_tck(case: dict[str, Any] | None) -> None:
    if case is None:
        reason = f"the CESQL test kit is not at {TCK}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    expression = case["expression"]
    assert isinstance(expression, str)
    if case.get("error") == "parse":
        with pytest.raises(UnsupportedCesql):
            parse(expression)
        return
    event = dict(case.get("event") or BASE_EVENT)
    event.update(case.get("eventOverrides") or {})
    value, error = parse(expression).evaluate(event)
    assert (error.kind if error else None) == case.get("error"), error
    if "result" in case:
        assert _typed(value) == _typed(case["result"])


def test_the_kit_is_complete() -> None:
    """The issue counted 275 cases; a loader that drops some would pass silently."""
    if not TCK.is_dir():
        pytest.skip(f"the CESQL test kit is not at {TCK}")
    assert len(_cases()) == 275
