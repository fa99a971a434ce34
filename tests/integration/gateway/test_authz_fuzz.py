"""Schema-driven fuzzing of the gateway's ext_authz surface (gateway/openapi.yaml) with schemathesis,
against the real app under uvicorn with a policy of real keys: any path, method, Host and
credential gets an allow or a problem+json denial, never a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis

import gateway
from gateway.authz import build_authz_app
from gateway.feed import StaticPolicy
from gateway.policy import Policy
from gateway.settings import GatewaySettings
from tests.support.fuzzing import fuzz_operation
from tests.support.gateway import HOST, agent, make_key, serve, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY, RECORD = make_key(tenant="acme", grants=["default/*"])
POLICY = Policy.from_snapshot(snapshot([RECORD], [agent(), agent("open", public=True)]))


def test_no_request_gets_a_5xx_and_every_denial_is_problem_json() -> None:
    schema = schemathesis.openapi.from_path(Path(gateway.__file__).with_name("openapi.yaml"))
    app = build_authz_app(GatewaySettings(), policy=StaticPolicy(POLICY))
    with serve(app) as url:
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 8
        for operation in operations:
            _fuzz(operation, url)


def _fuzz(operation: schemathesis.APIOperation, url: str) -> None:
    def requests(case: schemathesis.Case) -> list[dict]:
        generated = case.headers or {}
        # As generated, then aimed at a real agent with the real key and with the generated credential.
        aimed = {**generated, "Host": HOST}
        return [{"base_url": url, "headers": headers}
                for headers in (generated, {**aimed, "Authorization": f"Bearer {KEY}"}, aimed)]

    fuzz_operation(operation, 150, requests)
