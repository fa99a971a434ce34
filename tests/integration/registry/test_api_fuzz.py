"""Schema-driven fuzzing of the registry's HTTP API with schemathesis: every operation its OpenAPI
document describes gets generated requests (valid and not), with the admin key and without; none
may answer a 5xx, and every error is problem+json (docs/errors.md). The real registry on SQLite,
with the recording deploy backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis

from registry.settings import RegistrySettings
from tests.support.fuzzing import fuzz_operation
from tests.support.registry import RunningRegistry, run_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    data: Path = tmp_path_factory.mktemp("fuzzed-registry")
    with run_registry(RegistrySettings(data_dir=data)) as running:
        yield running


def test_no_input_gets_a_5xx_and_every_error_is_problem_json(registry: RunningRegistry) -> None:
    schema = schemathesis.openapi.from_url(f"{registry.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not an empty document
    with_key, without = {"headers": {"Authorization": f"Bearer {registry.admin_key}"}}, {"headers": {}}
    for operation in operations:
        fuzz_operation(operation, 12, lambda _case: (with_key, without))
