"""Configuration from the environment, with the names Knative/Kourier users already know."""

import pytest

from gateway.settings import GatewaySettings


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("KOURIER_EXTAUTHZ_PATHPREFIX", "/verify/")
    monkeypatch.setenv("PAR_REGISTRY_URL", "http://registry:8097")
    monkeypatch.setenv("PAR_ADMIN_KEY", "par_000000000000_" + "A" * 43)
    monkeypatch.setenv("PAR_GATEWAY_JWT_ALGORITHMS", "ES256, RS256")
    monkeypatch.setenv("PAR_GATEWAY_UPSTREAMS", '{"default/demo-agent": "http://127.0.0.1:8099"}')
    settings = GatewaySettings()
    assert settings.port == 9001
    assert settings.path_prefix == "/verify"
    assert settings.registry_url == "http://registry:8097" and settings.registry_key.startswith("par_")
    assert settings.jwt_algorithms == ["ES256", "RS256"]
    assert settings.upstreams == {"default/demo-agent": "http://127.0.0.1:8099"}


@pytest.mark.parametrize(
    "upstreams",
    [{"demo-agent": "http://127.0.0.1:1"}, {"default/a/b": "http://x"}, {"default/a": "127.0.0.1:8099"}],
)
def test_malformed_static_upstreams_are_a_configuration_error(upstreams: dict) -> None:
    with pytest.raises(ValueError, match="upstream"):
        GatewaySettings(upstreams=upstreams)


def test_uvicorn_options_make_the_gateway_the_edge() -> None:
    assert GatewaySettings(mode="authz").uvicorn_options()["proxy_headers"] is False
    proxy = GatewaySettings(mode="proxy").uvicorn_options()
    assert proxy["server_header"] is False and proxy["date_header"] is False
