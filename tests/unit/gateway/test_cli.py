"""`par gateway serve` refuses a configuration it cannot run with a one-line reason (exit 2)."""

import pytest
from typer.testing import CliRunner

from cli.app import app


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "no policy source"),
        (
            {"PAR_GATEWAY_POLICY_FILE": "p.json", "PAR_GATEWAY_JWT_PUBLIC_KEY": "/nonexistent.pem"},
            "nonexistent",
        ),
        ({"PAR_GATEWAY_POLICY_FILE": "p.json", "PAR_GATEWAY_JWT_ALGORITHMS": "HS256"}, "asymmetric"),
        (
            {"PAR_GATEWAY_POLICY_FILE": "p.json", "PAR_GATEWAY_UPSTREAMS": '{"x": "http://y"}'},
            "namespace/agent",
        ),
    ],
)
def test_unusable_configuration_exits_2_with_the_reason(
    env: dict, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PAR_REGISTRY_URL", "PAR_GATEWAY_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["gateway", "serve", "--port", "1"], env=env)
    assert result.exit_code == 2
    assert says in result.output
