"""Schema-driven fuzzing of the registry's HTTP API with schemathesis: every operation its OpenAPI
document describes gets generated requests (valid and not), with the admin key and without; none
may answer a 5xx, and every error is problem+json (docs/errors.md). The real registry on SQLite,
with the recording deploy backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import given

from registry.settings import RegistrySettings
from tests.support.fuzzing import bounded
from tests.support.registry import RunningRegistry, run_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BOUNDED = bounded(12)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    data: Path = tmp_path_factory.mktemp("fuzzed-registry")
    with run_registry(RegistrySettings(data_dir=data)) as running:
        yield running


def test_no_input_gets_a_5xx_and_every_error_is_problem_json(registry: RunningRegistry) -> None:
    schema = schemathesis.openapi.from_url(f"{registry.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not an empty document
    for operation in operations:
        _fuzz(operation, registry.admin_key)


def _fuzz(operation: schemathesis.APIOperation, admin_key: str) -> None:
    @BOUNDED
    @given(operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        for headers in ({"Authorization": f"Bearer {admin_key}"}, {}):
            response = case.call(headers=headers, timeout=30)
            where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
            assert response.status_code < 500, where
            if response.status_code >= 400:
                (kind,) = response.headers.get("content-type", [""])
                assert kind.startswith("application/problem+json"), where

    check()
