"""Envoy's ext_authz filter as Knative's ingresses program it, from the values PAR ships.

The values are read from `knative/gateway/kourier` and `knative/gateway/istio` (the files a user
applies), so the tests and the manifests cannot drift; only the authz service's address is
replaced by the loopback gateway under test. How each ingress turns those values into Envoy
configuration is written down here as facts:

Kourier (net-kourier `pkg/config/ext_authz.go`, `KOURIER_EXTAUTHZ_*` on its controller): cluster
`extAuthz` (STRICT_DNS, connect timeout 5 s, HTTP/1.1 for protocol http); filter with transport API
v3, `failure_mode_allow` = FAILUREMODEALLOW, `with_request_body` {max_request_bytes = MAXREQUESTBYTES
(default 8192), allow_partial_message: true, pack_as_bytes = PACKASBYTES}, clear_route_cache false,
`http_service` {server_uri `{PROTOCOL}://{HOST}` on cluster extAuthz, timeout TIMEOUT ms (default
2000), path_prefix = PATHPREFIX, authorization_request.headers_to_add `client: kourier`}; no
authorization_response, so Envoy's defaults apply to the headers that flow back.

Istio (istiod `pilot/pkg/security/authz/builder/extauthz.go`, meshConfig `envoyExtAuthzHttp`):
`http_service` {path_prefix = pathPrefix, server_uri `http://{service}` with timeout = timeout
(default 600 s), authorization_request.headers_to_add = includeAdditionalHeadersInCheck,
authorization_response {allowed_upstream_headers = headersToUpstreamOnAllow, allowed_client_headers
= headersToDownstreamOnDeny, allowed_client_headers_on_success = headersToDownstreamOnAllow}};
top-level `allowed_headers` = includeRequestHeadersInCheck; `status_on_error` = statusOnError;
`failure_mode_allow` = failOpen; `with_request_body` only from includeRequestBodyInCheck. Header
lists become exact, case-insensitive matchers (`*x`/`x*` suffix/prefix). istiod also sets
`filter_enabled_metadata` so that only requests a CUSTOM AuthorizationPolicy selects are checked;
the policy PAR ships selects every request (`rules: [{}]`), so it is left out here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.envoy import cluster

ROOT = Path(__file__).resolve().parents[2]
KOURIER = ROOT / "knative" / "gateway" / "kourier"
ISTIO = ROOT / "knative" / "gateway" / "istio"
EXT_AUTHZ = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"


def _container_env(path: Path, container: str) -> dict[str, str]:
    spec = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
    (found,) = [c for c in spec["containers"] if c["name"] == container]
    return {item["name"]: str(item["value"]) for item in found.get("env", []) if "value" in item}


def kourier_controller_env() -> dict[str, str]:
    """The `KOURIER_EXTAUTHZ_*` values PAR's patch puts on net-kourier-controller."""
    return _container_env(KOURIER / "net-kourier-controller.patch.yaml", "controller")


def kourier_gateway_env() -> dict[str, str]:
    """What the kourier overlay adds to the gateway's own environment."""
    return _container_env(KOURIER / "gateway-env.yaml", "gateway")


def istio_gateway_env() -> dict[str, str]:
    """What the istio overlay adds to the gateway's own environment."""
    return _container_env(ISTIO / "gateway-env.yaml", "gateway")


def istio_provider() -> dict[str, Any]:
    """The `envoyExtAuthzHttp` block of the `par-gateway` extension provider."""
    mesh = yaml.safe_load((ISTIO / "mesh-config-extension-provider.yaml").read_text())["spec"]["meshConfig"]
    (provider,) = [p for p in mesh["extensionProviders"] if p["name"] == "par-gateway"]
    return dict(provider["envoyExtAuthzHttp"])


def _bool(value: str) -> bool:
    """envconfig's strconv.ParseBool."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"not a Go boolean: {value!r}")


def _filter(config: dict[str, Any]) -> dict[str, Any]:
    return {"name": "envoy.filters.http.ext_authz", "typed_config": {"@type": EXT_AUTHZ, **config}}


def kourier_ext_authz(gateway_port: int, **overrides: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, cluster) as net-kourier builds them from its env; `overrides` change env values
    (e.g. KOURIER_EXTAUTHZ_PACKASBYTES="true") for the variants a user may set."""
    env = {**kourier_controller_env(), **overrides}
    protocol = env.get("KOURIER_EXTAUTHZ_PROTOCOL", "grpc")
    if protocol != "http":
        raise ValueError(f"PAR's gateway is an HTTP ext_authz service, KOURIER_EXTAUTHZ_PROTOCOL={protocol}")
    _, _, shipped_port = env["KOURIER_EXTAUTHZ_HOST"].rpartition(":")
    if not shipped_port.isdigit():
        raise ValueError(f"KOURIER_EXTAUTHZ_HOST needs host:port, not {env['KOURIER_EXTAUTHZ_HOST']!r}")
    timeout_ms = int(env.get("KOURIER_EXTAUTHZ_TIMEOUT", "2000"))
    body = {
        "max_request_bytes": int(env.get("KOURIER_EXTAUTHZ_MAXREQUESTBYTES", "8192")),
        "allow_partial_message": True,
        "pack_as_bytes": _bool(env.get("KOURIER_EXTAUTHZ_PACKASBYTES", "false")),
    }
    service = {
        "server_uri": {
            "uri": f"http://127.0.0.1:{gateway_port}",
            "cluster": "extAuthz",
            "timeout": f"{timeout_ms / 1000:g}s",
        },
        "path_prefix": env.get("KOURIER_EXTAUTHZ_PATHPREFIX", ""),
        "authorization_request": {"headers_to_add": [{"key": "client", "value": "kourier"}]},
    }
    config = {
        "transport_api_version": "V3",
        "failure_mode_allow": _bool(env["KOURIER_EXTAUTHZ_FAILUREMODEALLOW"]),
        "with_request_body": body,
        "clear_route_cache": False,
        "http_service": service,
    }
    return _filter(config), cluster("extAuthz", gateway_port, type="STRICT_DNS")


def _matchers(headers: list[str]) -> dict[str, Any]:
    patterns = []
    for header in headers:
        if header.startswith("*"):
            patterns.append({"suffix": header[1:], "ignore_case": True})
        elif header.endswith("*"):
            patterns.append({"prefix": header[:-1], "ignore_case": True})
        else:
            patterns.append({"exact": header, "ignore_case": True})
    return {"patterns": patterns}


def istio_ext_authz(gateway_port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, cluster) as istiod builds them from PAR's `envoyExtAuthzHttp` provider."""
    provider = istio_provider()
    name = f"outbound|{provider['port']}||{provider['service']}"
    service: dict[str, Any] = {
        "path_prefix": provider.get("pathPrefix", ""),
        "server_uri": {
            "uri": f"http://{provider['service']}",
            "cluster": name,
            "timeout": provider.get("timeout", "600s"),
        },
    }
    additional = provider.get("includeAdditionalHeadersInCheck") or {}
    if additional:
        service["authorization_request"] = {
            "headers_to_add": [{"key": k, "value": additional[k]} for k in sorted(additional)]
        }
    response = {
        field: _matchers(provider[key])
        for key, field in (
            ("headersToUpstreamOnAllow", "allowed_upstream_headers"),
            ("headersToDownstreamOnDeny", "allowed_client_headers"),
            ("headersToDownstreamOnAllow", "allowed_client_headers_on_success"),
        )
        if provider.get(key)
    }
    if response:
        service["authorization_response"] = response
    config: dict[str, Any] = {
        "transport_api_version": "V3",
        "failure_mode_allow": bool(provider.get("failOpen", False)),
        "http_service": service,
    }
    if provider.get("includeRequestHeadersInCheck"):
        config["allowed_headers"] = _matchers(provider["includeRequestHeadersInCheck"])
    if provider.get("statusOnError"):
        config["status_on_error"] = {"code": int(provider["statusOnError"])}
    body = provider.get("includeRequestBodyInCheck")
    if body:
        config["with_request_body"] = {
            "max_request_bytes": body.get("maxRequestBytes", 0),
            "allow_partial_message": body.get("allowPartialMessage", False),
            "pack_as_bytes": body.get("packAsBytes", False),
        }
    return _filter(config), cluster(name, gateway_port)
