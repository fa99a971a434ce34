"""JWT bearer tokens verified with keys from a JWKS URL served by a real server, including a key
rotation the gateway learns about when a token names a new `kid`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.authz import build_authz_app
from gateway.feed import StaticPolicy
from gateway.policy import Policy
from gateway.settings import GatewaySettings
from tests.support.gateway import serve, snapshot

pytestmark = pytest.mark.integration

ISSUER, AUDIENCE = "https://idp.test", "par"


class Jwks:
    """Serves `{"keys": [...]}` from whatever keys the test has published."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.fetches = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.fetches += 1
        body = json.dumps({"keys": self.keys}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def publish(self, kid: str, private, algorithm: str) -> None:
        codec = RSAAlgorithm if algorithm.startswith("RS") else ECAlgorithm
        jwk = json.loads(codec.to_jwk(private.public_key()))
        self.keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})


@pytest.fixture
def jwks() -> Iterator[tuple[Jwks, str]]:
    app = Jwks()
    with serve(app) as url:
        yield app, f"{url}/.well-known/jwks.json"


def token(private, algorithm: str, kid: str, **claims) -> str:
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": "acme",
        "exp": int(time.time()) + 60,
        **claims,
    }
    return jwt.encode(body, private, algorithm=algorithm, headers={"kid": kid})


def test_jwt_through_the_authz_server_with_rotation(jwks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.jwtauth._MIN_REFETCH", 0.2)
    published, url = jwks
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    published.publish("k1", first, "RS256")
    settings = GatewaySettings(jwt_jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    app = build_authz_app(settings, policy=StaticPolicy(Policy.from_snapshot(snapshot([]))))
    with serve(app) as gateway:

        def check(bearer: str, host: str = "agent.acme") -> httpx.Response:
            return httpx.get(gateway, headers={"Host": host, "Authorization": f"Bearer {bearer}"})

        allowed = check(token(first, "RS256", "k1"))
        assert allowed.status_code == 200
        assert allowed.headers["x-par-tenant"] == "acme" and allowed.headers["x-par-key-id"] == "jwt:alice"
        assert check(token(first, "RS256", "k1"), host="agent.globex").status_code == 403  # wrong tenant
        expired = check(token(first, "RS256", "k1", exp=int(time.time()) - 600))
        assert expired.status_code == 401 and expired.json()["code"] == "expired_jwt"

        # The identity provider rotates to an EC key; the gateway fetches the new set on demand.
        second = ec.generate_private_key(ec.SECP256R1())
        published.publish("k2", second, "ES256")
        time.sleep(0.3)
        assert check(token(second, "ES256", "k2")).status_code == 200
        # a kid nobody published stays out, and does not trigger a fetch storm
        monkeypatch.setattr("gateway.jwtauth._MIN_REFETCH", 60.0)
        fetches = published.fetches
        for _ in range(5):
            assert check(token(second, "ES256", "k3")).status_code == 401
        assert published.fetches == fetches
