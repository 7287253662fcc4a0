"""TokenVerifier against real keys: HS256 with a secret, RS256/ES256 with a JWKS served over
HTTP on a loopback socket, and the classic attacks (alg none, algorithm confusion)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from photovault_server.auth import AuthConfig, TokenVerifier
from photovault_server.core.errors import Unauthenticated

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER, AUDIENCE = "https://issuer.test/", "photovault"


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    body = json.dumps({"keys": [jwk(RSA_KEY, "rsa-1", "RS256"), jwk(EC_KEY, "ec-1", "ES256")]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, alg: str, kid: str, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def jwks_verifier(jwks_url: str) -> TokenVerifier:
    return TokenVerifier(AuthConfig(jwks_url=jwks_url, issuer=ISSUER, audience=AUDIENCE))


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1")]
)
async def test_jwks_tokens_verify(
    jwks_verifier: TokenVerifier, key: Any, alg: str, kid: str
) -> None:
    assert await jwks_verifier.user_id(f"Bearer {sign(key, alg, kid)}") == "alice"


def _public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _confusion_token() -> str:
    """HS256 'signed' with the RSA public key: accepted by verifiers that trust the header."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(_public_pem(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


BAD: dict[str, Callable[[], str]] = {
    "expired": lambda: sign(RSA_KEY, "RS256", "rsa-1", exp=int(time.time()) - 600),
    "not-yet-valid": lambda: sign(RSA_KEY, "RS256", "rsa-1", nbf=int(time.time()) + 600),
    "wrong-issuer": lambda: sign(RSA_KEY, "RS256", "rsa-1", iss="https://evil.test/"),
    "wrong-audience": lambda: sign(RSA_KEY, "RS256", "rsa-1", aud="someone-else"),
    "no-sub": lambda: sign(RSA_KEY, "RS256", "rsa-1", sub=None),
    "unknown-kid": lambda: sign(RSA_KEY, "RS256", "nope"),
    "other-rsa-key": lambda: sign(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", "rsa-1"
    ),
    # PyJWT's annotations leave out the None key that algorithm "none" requires.
    "alg-none": lambda: jwt.encode(
        claims(),
        None,  # type: ignore[arg-type]
        algorithm="none",
        headers={"kid": "rsa-1"},
    ),
    "hs256-with-public-key": _confusion_token,
    "garbage": lambda: "a.b.c",
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_jwks_rejects(jwks_verifier: TokenVerifier, case: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        await jwks_verifier.user_id(f"Bearer {BAD[case]()}")
    assert err.value.reason in ("TOKEN_INVALID", "TOKEN_EXPIRED")


async def test_hs256_verifier_checks_issuer_and_audience() -> None:
    secret = "s" * 40
    verifier = TokenVerifier(AuthConfig(secret=secret, issuer=ISSUER, audience=AUDIENCE))
    good = jwt.encode(claims(), secret, algorithm="HS256")
    assert await verifier.verify(good) == "alice"
    for bad in (claims(iss="x"), claims(aud="x"), claims(iss=None)):
        with pytest.raises(Unauthenticated):
            await verifier.verify(jwt.encode(bad, secret, algorithm="HS256"))
    # An RS256 token is never accepted by an HS256 verifier, whatever its signature.
    with pytest.raises(Unauthenticated):
        await verifier.verify(sign(RSA_KEY, "RS256", "rsa-1"))


def test_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(AuthConfig())
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(AuthConfig(secret="s" * 40, jwks_url="http://127.0.0.1/jwks"))
