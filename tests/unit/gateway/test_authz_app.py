"""The ext_authz app's answers, in process through httpx's ASGI transport (the same app runs under
uvicorn in tests/integration/gateway)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.authz import build_authz_app
from gateway.feed import StaticPolicy
from gateway.policy import Policy
from gateway.settings import GatewaySettings
from tests.support.gateway import HOST, agent, make_key, snapshot
from tests.support.net import free_port

KEY, RECORD = make_key(tenant="acme", grants=["default/*"])
OTHER_KEY, OTHER = make_key(tenant="globex", grants=["globex/*"])
ADMIN_KEY, ADMIN = make_key(tenant="ops", grants=[], admin=True)
REVOKED_KEY, REVOKED = make_key(revoked=True)
EXPIRED_KEY, EXPIRED = make_key(expires_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
LIMITED_KEY, LIMITED = make_key(rate=1, burst=2)
AGENTS = [agent(), agent("open", public=True), agent("slow", rate=0.5, burst=1)]

Factory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client() -> AsyncIterator[Factory]:
    clients: list[httpx.AsyncClient] = []

    def factory(policy: Policy | None = None, **settings) -> httpx.AsyncClient:
        if policy is None:
            keys = [RECORD, OTHER, ADMIN, REVOKED, EXPIRED, LIMITED]
            policy = Policy.from_snapshot(snapshot(keys, AGENTS))
        app = build_authz_app(GatewaySettings(**settings), policy=StaticPolicy(policy))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def bearer(key: str, host: str = HOST) -> dict[str, str]:
    return {"Host": host, "Authorization": f"Bearer {key}"}


async def test_valid_key_is_allowed_with_identity_headers(make_client: Factory) -> None:
    response = await make_client().get("/api/hello", headers=bearer(KEY))
    assert response.status_code == 200
    assert response.headers["x-par-tenant"] == "acme"
    assert response.headers["x-par-key-id"] == RECORD["id"]


async def test_every_method_and_path_is_checked_the_same(make_client: Factory) -> None:
    client = make_client()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert (await client.request(method, "/invoke", headers=bearer(KEY))).status_code == 200
        assert (await client.request(method, "/invoke", headers={"Host": HOST})).status_code == 401


async def test_missing_credentials_get_a_bearer_challenge(make_client: Factory) -> None:
    response = await make_client().get("/", headers={"Host": HOST})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="par"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank", "title": "Unauthorized", "status": 401, "code": "missing_credentials",
        "detail": response.json()["detail"],
    }


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ("Basic dXNlcjpwYXNz", "malformed_credentials"),
        ("Bearer", "malformed_credentials"),
        ("Bearer ", "malformed_credentials"),
        ("Bearer par_short", "malformed_credentials"),
        ("Bearer not-a-key-at-all", "malformed_credentials"),
        (f"Bearer {KEY[:-1]}!", "malformed_credentials"),
        (f"Bearer {KEY[:-2]}AA", "bad_key"),
        (f"Bearer par_000000000000_{'A' * 43}", "unknown_key"),
        (f"Bearer {REVOKED_KEY}", "revoked_key"),
        (f"Bearer {EXPIRED_KEY}", "expired_key"),
        ("Bearer a.b.c", "invalid_jwt"),
        (f"Bearer {KEY} trailing", "malformed_credentials"),
    ],
)
async def test_bad_credentials_are_401_with_invalid_token(
    make_client: Factory, authorization: str, reason: str
) -> None:
    response = await make_client().get("/", headers={"Host": HOST, "Authorization": authorization})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["code"] == reason


async def test_unknown_and_wrong_secret_keys_look_the_same_to_the_caller(make_client: Factory) -> None:
    client = make_client()
    unknown = await client.get("/", headers=bearer(f"par_000000000000_{'A' * 43}"))
    wrong = await client.get("/", headers=bearer(f"{KEY[:-2]}AA"))
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]
    assert unknown.json()["detail"] == wrong.json()["detail"]


async def test_scheme_is_case_insensitive(make_client: Factory) -> None:
    response = await make_client().get("/", headers={"Host": HOST, "Authorization": f"bearer {KEY}"})
    assert response.status_code == 200


async def test_wrong_tenant_is_forbidden(make_client: Factory) -> None:
    response = await make_client().get("/", headers=bearer(OTHER_KEY))
    assert response.status_code == 403
    assert response.json()["title"] == "Forbidden"
    assert "www-authenticate" not in response.headers


async def test_admin_may_call_everything(make_client: Factory) -> None:
    response = await make_client().get("/", headers=bearer(ADMIN_KEY, "anything.anywhere"))
    assert response.status_code == 200
    assert response.headers["x-par-tenant"] == "ops"


async def test_public_agent_needs_no_credentials_but_rejects_bad_ones(make_client: Factory) -> None:
    client = make_client()
    open_host = "open.default.127.0.0.1.sslip.io"
    anonymous = await client.get("/", headers={"Host": open_host})
    assert anonymous.status_code == 200
    assert anonymous.headers["x-par-tenant"] == "-" and anonymous.headers["x-par-key-id"] == "-"
    assert (await client.get("/", headers=bearer(OTHER_KEY, open_host))).headers["x-par-tenant"] == "globex"
    assert (await client.get("/", headers=bearer(REVOKED_KEY, open_host))).status_code == 401


@pytest.mark.parametrize(
    "host",
    ["evil.example.com", "demo-agent..default", "demo-agent.default.127.0.0.1.sslip.io..", "127.0.0.1"],
)
async def test_unknown_hosts_are_404_even_with_a_good_key(make_client: Factory, host: str) -> None:
    response = await make_client().get("/", headers=bearer(KEY, host))
    assert response.status_code == 404


async def test_non_ascii_host_bytes_are_404(make_client: Factory) -> None:
    client = make_client()
    response = await client.get(
        "/",
        headers=[(b"Host", "d\u0435mo-agent.default".encode()), (b"Authorization", f"Bearer {KEY}".encode())],
    )
    assert response.status_code == 404


async def test_two_authorization_headers_are_never_a_credential(make_client: Factory) -> None:
    headers = [
        (b"Host", HOST.encode()),
        (b"Authorization", b"Bearer junk"),
        (b"Authorization", f"Bearer {KEY}".encode()),
    ]
    response = await make_client().get("/", headers=headers)
    assert response.status_code == 401


async def test_rate_limit_429_with_headers(make_client: Factory) -> None:
    client = make_client()
    first = await client.get("/", headers=bearer(LIMITED_KEY))
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "2" and first.headers["ratelimit-remaining"] == "1"
    assert (await client.get("/", headers=bearer(LIMITED_KEY))).status_code == 200
    over = await client.get("/", headers=bearer(LIMITED_KEY))
    assert over.status_code == 429
    assert over.headers["retry-after"] == "1"
    assert over.headers["ratelimit-remaining"] == "0"
    assert int(over.headers["ratelimit-reset"]) >= 1
    assert over.json()["code"] == "rate_limited"
    # another agent is another bucket
    other = await client.get("/", headers=bearer(LIMITED_KEY, "x.default"))
    assert other.status_code == 200


async def test_agent_override_limits_an_unlimited_key(make_client: Factory) -> None:
    client = make_client()
    slow = "slow.default"
    assert (await client.get("/", headers=bearer(KEY, slow))).status_code == 200
    over = await client.get("/", headers=bearer(KEY, slow))
    assert over.status_code == 429 and over.headers["retry-after"] == "2"


async def test_kourier_path_prefix_is_honoured(make_client: Factory) -> None:
    client = make_client(path_prefix="/check")
    assert (await client.get("/check/api/hello", headers=bearer(KEY))).status_code == 200
    assert (await client.get("/check", headers=bearer(KEY))).status_code == 200
    assert (await client.get("/api/hello", headers=bearer(KEY))).status_code == 400
    assert (await client.get("/checkout", headers=bearer(KEY))).status_code == 400


@pytest.mark.parametrize(
    ("path", "raw_path"),
    [
        ("/check/../admin", b"/check/../admin"),
        ("/check/a/../../x", b"/check/a/../../x"),
        ("/check/../x", b"/check/%2e%2e/x"),
        ("/check/../x", b"/check/%2E%2e/x"),
        ("/check/%2e%2e/x", b"/check/%252e%252e/x"),
        ("/check/./x", b"/check/./x"),
        ("/check/a/..", b"/check/a/.."),
    ],
)
async def test_dot_segments_are_refused(path: str, raw_path: bytes) -> None:
    """Called with the scope uvicorn builds (httpx would normalise such a URL before sending)."""
    app = build_authz_app(
        GatewaySettings(path_prefix="/check"), policy=StaticPolicy(Policy.from_snapshot(snapshot([RECORD])))
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [(b"host", HOST.encode()), (b"authorization", f"Bearer {KEY}".encode())],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert b"bad_path" in sent[1]["body"]


def test_a_prefix_with_dot_segments_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="prefix"):
        GatewaySettings(path_prefix="/check/../x")


async def test_oversize_headers_are_431(make_client: Factory) -> None:
    client = make_client(max_header_bytes=4096)
    response = await client.get("/", headers={**bearer(KEY), "X-Junk": "a" * 5000})
    assert response.status_code == 431


async def test_oversize_bodies_are_413_by_content_length(make_client: Factory) -> None:
    client = make_client(max_body_bytes=1000)
    response = await client.post("/invoke", headers=bearer(KEY), content=b"x" * 1001)
    assert response.status_code == 413
    ok = await client.post("/invoke", headers=bearer(KEY), content=b"x" * 1000)
    assert ok.status_code == 200


async def test_a_body_envoy_cut_at_the_limit_is_over_it(make_client: Factory) -> None:
    """Envoy's check carries at most its buffer of the body, marked when cut (with_request_body)."""
    client = make_client(max_body_bytes=1000)
    cut = {**bearer(KEY), "x-envoy-auth-partial-body": "true"}
    assert (await client.post("/invoke", headers=cut, content=b"x" * 1000)).status_code == 413
    assert (await client.post("/invoke", headers=cut, content=b"x" * 999)).status_code == 200
    whole = {**bearer(KEY), "x-envoy-auth-partial-body": "false"}
    assert (await client.post("/invoke", headers=whole, content=b"x" * 1000)).status_code == 200


async def test_kourier_checks_strip_the_identity_headers_a_client_could_send(make_client: Factory) -> None:
    """Kourier forwards no check response header upstream, so a client's x-par-tenant would pass."""
    client = make_client()
    kourier = await client.get("/", headers={**bearer(KEY), "client": "kourier"})
    assert kourier.headers["x-envoy-auth-headers-to-remove"] == "x-par-tenant,x-par-key-id"
    istio = await client.get("/", headers=bearer(KEY))  # headersToUpstreamOnAllow overwrites instead
    assert "x-envoy-auth-headers-to-remove" not in istio.headers


async def test_garbage_content_length_is_refused(make_client: Factory) -> None:
    response = await make_client().get("/", headers={**bearer(KEY), "Content-Length": "-1"})
    assert response.status_code == 413


async def test_no_policy_yet_fails_closed(make_client: Factory) -> None:
    app = build_authz_app(GatewaySettings(), policy=StaticPolicy(None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        response = await client.get("/", headers=bearer(KEY))
        assert response.status_code == 503
        assert (await client.get("/readyz")).status_code == 503


class BrokenPolicy(StaticPolicy):
    """A policy source that fails inside the decision (stands in for any internal bug)."""

    def current(self) -> Policy:
        raise RuntimeError("boom")


@pytest.mark.parametrize(("fail_open", "status"), [(False, 503), (True, 200)])
async def test_internal_errors_deny_unless_configured_open(fail_open: bool, status: int) -> None:
    app = build_authz_app(GatewaySettings(fail_open=fail_open), policy=BrokenPolicy())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        assert (await client.get("/", headers=bearer(KEY))).status_code == status


@pytest.mark.parametrize(("fail_open", "status"), [(False, 503), (True, 200)])
async def test_unreachable_redis_fails_closed_by_default(fail_open: bool, status: int, caplog) -> None:
    policy = Policy.from_snapshot(snapshot([LIMITED], AGENTS))
    settings = GatewaySettings(
        ratelimit_backend="redis",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        ratelimit_fail_open=fail_open,
    )
    app = build_authz_app(settings, policy=StaticPolicy(policy))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        response = await client.get("/", headers=bearer(LIMITED_KEY))
    assert response.status_code == status
    assert any("rate limiter unavailable" in r.getMessage() for r in caplog.records)
    await app.authorizer.limiter.close()


async def test_own_routes_answer_only_on_non_agent_hosts(make_client: Factory) -> None:
    client = make_client()
    await client.get("/", headers=bearer(KEY))
    await client.get("/", headers={"Host": HOST})
    metrics = await client.get("/metrics", headers={"Host": "127.0.0.1:8096"})
    assert metrics.status_code == 200
    assert 'par_gateway_decisions_total{outcome="allow",reason="key"}' in metrics.text
    assert 'par_gateway_decisions_total{outcome="deny",reason="missing_credentials"}' in metrics.text
    assert "par_gateway_decision_seconds_bucket" in metrics.text
    assert (await client.get("/healthz", headers={"Host": "localhost"})).status_code == 200
    assert (await client.get("/readyz", headers={"Host": "localhost"})).status_code == 200
    # for an agent's host, /metrics is just another path to check
    assert (await client.get("/metrics", headers={"Host": HOST})).status_code == 401


async def test_a_tag_host_is_decided_as_its_agent(make_client: Factory) -> None:
    """Knative routes `{tag}-{agent}` to a tagged version; ext_authz must grant it as that agent."""
    only_demo, record = make_key(tenant="acme", grants=["default/demo-agent"])
    policy = Policy.from_snapshot(snapshot([record], [agent(tags=["v0-2-0"])]))
    client = make_client(policy)
    tagged = "v0-2-0-demo-agent.default.127.0.0.1.sslip.io"
    allowed = await client.get("/", headers=bearer(only_demo, tagged))
    assert allowed.status_code == 200 and allowed.headers["x-par-tenant"] == "acme"
    unknown_tag = await client.get("/", headers=bearer(only_demo, "v9-demo-agent.default.127.0.0.1.sslip.io"))
    assert unknown_tag.status_code == 403  # no such tag: another agent's name, not granted


PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_the_trace_is_continued_on_allow_and_deny(make_client: Factory) -> None:
    """ext_authz answers with the caller's trace under the gateway's span (Istio's
    headersToUpstreamOnAllow passes `traceparent` on to the agent)."""
    client = make_client()
    for headers in (bearer(KEY), {"Host": HOST}):
        response = await client.get("/", headers={**headers, "traceparent": PARENT})
        _, trace_id, span_id, flags = response.headers["traceparent"].split("-")
        assert (trace_id, flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "01")
        assert span_id != "00f067aa0ba902b7"


@pytest.mark.parametrize(("ratio", "flags"), [(0.0, "00"), (1.0, "01")])
async def test_new_traces_are_sampled_by_the_setting(make_client: Factory, ratio: float, flags: str) -> None:
    client = make_client(trace_sample_ratio=ratio)
    response = await client.get("/", headers=bearer(KEY))
    assert response.headers["traceparent"].endswith(f"-{flags}")
    kept = await client.get("/", headers={**bearer(KEY), "traceparent": PARENT})  # parent-based
    assert kept.headers["traceparent"].endswith("-01")


async def test_with_an_exporter_the_decision_is_spans_naming_the_key_id_never_the_key() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from runtime import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_provider(provider)
    try:
        policy = Policy.from_snapshot(snapshot([RECORD, LIMITED], AGENTS))
        app = build_authz_app(GatewaySettings(), policy=StaticPolicy(policy))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            allowed = await client.get("/", headers={**bearer(KEY), "traceparent": PARENT})
            for _ in range(3):
                limited = await client.get("/", headers=bearer(LIMITED_KEY))
    finally:
        telemetry.use_provider(None)
    assert (allowed.status_code, limited.status_code) == (200, 429)
    spans = exporter.get_finished_spans()
    first_server = next(s for s in spans if s.kind.name == "SERVER")
    first_decision = next(s for s in spans if s.name == "authorize")
    assert format(first_server.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert first_decision.parent.span_id == first_server.context.span_id
    assert allowed.headers["traceparent"].split("-")[2] == format(first_server.context.span_id, "016x")
    assert first_decision.attributes["par.key_id"] == RECORD["id"]
    assert first_decision.attributes["par.decision.allowed"] is True
    assert first_server.attributes["http.response.status_code"] == 200
    last = [s for s in spans if s.name == "authorize"][-1]
    assert last.attributes["par.ratelimit.limited"] is True and last.attributes["par.decision.status"] == 429
    everything = repr([dict(s.attributes) for s in spans])
    assert KEY not in everything and LIMITED_KEY not in everything
