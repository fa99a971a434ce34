"""JWT bearer tokens: good RS256/ES256 tokens pass; expired, early, foreign, `alg: none` and
HS/RS-confused tokens do not."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.hosts import Target
from gateway.jwtauth import JwtError, JwtVerifier
from gateway.settings import GatewaySettings

ISSUER = "https://idp.example"
AUDIENCE = "par"


def _pem(private) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _claims(**extra) -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant": "acme", "exp": now + 300, **extra}


def _verifier(public_pem: str, **settings) -> JwtVerifier:
    return JwtVerifier(
        GatewaySettings(jwt_public_key=public_pem, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **settings)
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_rs256_token_maps_to_tenant_and_default_grants(rsa_key) -> None:
    principal = await _verifier(_pem(rsa_key)).verify(jwt.encode(_claims(), rsa_key, algorithm="RS256"))
    assert principal.tenant == "acme" and principal.subject == "alice"
    assert principal.grants.allows(Target("acme", "any-agent"))
    assert not principal.grants.allows(Target("default", "demo-agent"))


async def test_es256_token_with_grants_claim_and_custom_tenant_claim(ec_key) -> None:
    verifier = _verifier(_pem(ec_key), jwt_tenant_claim="org")
    token = jwt.encode(_claims(org="globex", par_grants="default/demo-* tools/x"), ec_key, algorithm="ES256")
    principal = await verifier.verify(token)
    assert principal.tenant == "globex"
    assert principal.grants.allows(Target("default", "demo-agent"))
    assert principal.grants.allows(Target("tools", "x"))
    assert not principal.grants.allows(Target("globex", "y"))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired_jwt"),
        ({"nbf": int(time.time()) + 3600}, "jwt_not_yet_valid"),
        ({"iss": "https://evil.example"}, "invalid_jwt"),
        ({"aud": "someone-else"}, "invalid_jwt"),
        ({"tenant": ""}, "invalid_jwt"),
        ({"tenant": ["acme"]}, "invalid_jwt"),
    ],
)
async def test_bad_claims_are_rejected(rsa_key, claims: dict, reason: str) -> None:
    with pytest.raises(JwtError) as err:
        await _verifier(_pem(rsa_key)).verify(jwt.encode(_claims(**claims), rsa_key, algorithm="RS256"))
    assert err.value.reason == reason


async def test_missing_exp_is_rejected(rsa_key) -> None:
    claims = _claims()
    del claims["exp"]
    with pytest.raises(JwtError):
        await _verifier(_pem(rsa_key)).verify(jwt.encode(claims, rsa_key, algorithm="RS256"))


async def test_small_clock_skew_is_tolerated(rsa_key) -> None:
    token = jwt.encode(
        _claims(exp=int(time.time()) - 5, nbf=int(time.time()) + 5), rsa_key, algorithm="RS256"
    )
    assert (await _verifier(_pem(rsa_key)).verify(token)).tenant == "acme"


async def test_alg_none_is_rejected(rsa_key) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    token = f"{header}.{_b64(json.dumps(_claims()).encode())}."
    with pytest.raises(JwtError) as err:
        await _verifier(_pem(rsa_key)).verify(token)
    assert "algorithm" in str(err.value)


async def test_hs256_signed_with_the_public_key_is_rejected(rsa_key) -> None:
    """The classic confusion: an attacker HMACs with the (public) RSA key as the secret."""
    public_pem = _pem(rsa_key)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(JwtError):
        await _verifier(public_pem).verify(f"{header}.{payload}.{_b64(signature)}")


async def test_es256_header_against_an_rsa_key_is_rejected(rsa_key, ec_key) -> None:
    token = jwt.encode(_claims(), ec_key, algorithm="ES256")
    with pytest.raises(JwtError) as err:
        await _verifier(_pem(rsa_key)).verify(token)
    assert "no ES256 key" in str(err.value)


async def test_token_signed_by_another_key_is_rejected(rsa_key) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(JwtError):
        await _verifier(_pem(rsa_key)).verify(jwt.encode(_claims(), other, algorithm="RS256"))


@pytest.mark.parametrize(
    "token", ["a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.garbage.garbage", "x" * 5000 + ".y.z"]
)
async def test_garbled_tokens_are_rejected(rsa_key, token: str) -> None:
    with pytest.raises(JwtError):
        await _verifier(_pem(rsa_key)).verify(token)


async def test_without_configuration_jwts_are_refused() -> None:
    with pytest.raises(JwtError):
        await JwtVerifier(GatewaySettings()).verify("a.b.c")


def test_symmetric_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        GatewaySettings(jwt_algorithms=["RS256", "HS256"])
