"""TokenVerifier against real keys: HS256 with a secret, RS256/ES256 with a JWKS served over
HTTP on a loopback socket, and the classic attacks (alg none, algorithm confusion)."""

from __future__ import annotations

import json
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from photovault_server import auth
from photovault_server.auth import AuthConfig, TokenVerifier
from photovault_server.core.errors import Unauthenticated
from photovault_server.settings import AuthSettings, SettingsError, load_section

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER, AUDIENCE = "https://issuer.test/", "photovault"


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


class JwksServer:
    """A JWKS endpoint on a loopback socket whose key set a test may change, counting fetches."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def default_keys() -> list[dict[str, Any]]:
    return [jwk(RSA_KEY, "rsa-1", "RS256"), jwk(EC_KEY, "ec-1", "ES256")]


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    server = JwksServer(default_keys())
    yield server.url
    server.close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(default_keys())
    yield server
    server.close()


class MonotonicClock:
    """Stands in for `time` in PyJWT's key-set cache and JWKS client: time moves on only when
    the test says so."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def jwks_clock(monkeypatch: pytest.MonkeyPatch) -> MonotonicClock:
    clock = MonotonicClock()
    fake = types.SimpleNamespace(monotonic=clock.monotonic, time=time.time)
    monkeypatch.setattr(jwt.jwk_set_cache, "time", fake)
    monkeypatch.setattr(jwt.jwks_client, "time", fake)
    return clock


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
    # The header's algorithm and the key its kid names disagree (issue 13, item 1): PyJWT's
    # cryptography layer raised TypeError, answered INTERNAL.
    "es256-header-rsa-kid": lambda: sign(EC_KEY, "ES256", "rsa-1"),
    "rs256-header-ec-kid": lambda: sign(RSA_KEY, "RS256", "ec-1"),
    "rs256-signed-for-ec-kid-as-es256": lambda: _resigned_header(
        sign(RSA_KEY, "RS256", "rsa-1"), alg="ES256", kid="ec-1"
    ),
    "no-issuer": lambda: sign(RSA_KEY, "RS256", "rsa-1", iss=None),
    "client-id-not-ours-without-aud": lambda: sign(
        RSA_KEY, "RS256", "rsa-1", aud=None, client_id="someone-else"
    ),
    "client-id-ours-but-aud-not": lambda: sign(
        RSA_KEY, "RS256", "rsa-1", aud="someone-else", client_id=AUDIENCE
    ),
    "neither-aud-nor-client-id": lambda: sign(RSA_KEY, "RS256", "rsa-1", aud=None),
}


def _resigned_header(token: str, **header: str) -> str:
    """The token with its header replaced (the signature left as it was)."""
    import base64

    _, payload, signature = token.split(".")
    raw = json.dumps({"typ": "JWT", **header}).encode()
    head = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{head}.{payload}.{signature}"


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


async def test_key_algorithm_mismatch_is_unauthenticated_not_an_error(
    jwks_verifier: TokenVerifier,
) -> None:
    """Every PyJWT failure, and the TypeError/ValueError of a key that does not fit the
    header's algorithm, is the caller's fault: TOKEN_INVALID, never an unexpected error."""
    for token in (
        sign(EC_KEY, "ES256", "rsa-1"),
        sign(RSA_KEY, "RS256", "ec-1"),
        sign(RSA_KEY, "PS256", "rsa-1"),
        sign(ec.generate_private_key(ec.SECP384R1()), "ES384", "ec-1"),
    ):
        with pytest.raises(Unauthenticated) as err:
            await jwks_verifier.verify(token)
        assert err.value.reason == "TOKEN_INVALID"


async def test_cognito_access_token_audience_is_its_client_id(
    jwks_verifier: TokenVerifier,
) -> None:
    token = sign(RSA_KEY, "RS256", "rsa-1", aud=None, client_id=AUDIENCE, token_use="access")
    assert await jwks_verifier.verify(token) == "alice"
    listed = sign(RSA_KEY, "RS256", "rsa-1", aud=["other", AUDIENCE])
    assert await jwks_verifier.verify(listed) == "alice"


async def test_another_tenant_of_a_shared_key_set_is_refused(jwks_url: str) -> None:
    """A key set shared across tenants signs their tokens too: only our issuer is accepted,
    and a JWKS verifier without an issuer cannot be built."""
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url, issuer=ISSUER))
    assert await verifier.verify(sign(RSA_KEY, "RS256", "rsa-1")) == "alice"
    for iss in ("https://other-tenant.test/", ISSUER[:-1], ISSUER + "x", "https://issuer"):
        with pytest.raises(Unauthenticated):
            await verifier.verify(sign(RSA_KEY, "RS256", "rsa-1", iss=iss))
    with pytest.raises(ValueError, match="issuer"):
        TokenVerifier(AuthConfig(jwks_url=jwks_url))


def test_jwks_without_issuer_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOVAULT_JWKS_URL", "https://issuer.test/.well-known/jwks.json")
    monkeypatch.setenv("PHOTOVAULT_PAGE_TOKEN_SECRET", "p" * 32)
    monkeypatch.delenv("PHOTOVAULT_JWT_SECRET", raising=False)
    monkeypatch.delenv("PHOTOVAULT_JWT_ISSUER", raising=False)
    with pytest.raises(SettingsError, match="PHOTOVAULT_JWT_ISSUER"):
        load_section(AuthSettings)
    monkeypatch.setenv("PHOTOVAULT_JWT_ISSUER", ISSUER)
    assert load_section(AuthSettings).auth_config().issuer == ISSUER


async def test_a_key_removed_from_the_set_stops_working_within_the_cache_lifetime(
    jwks_server: JwksServer, jwks_clock: MonotonicClock
) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_server.url, issuer=ISSUER))
    token = sign(RSA_KEY, "RS256", "rsa-1")
    assert await verifier.verify(token) == "alice"
    jwks_server.keys = [jwk(EC_KEY, "ec-1", "ES256")]  # rsa-1 revoked
    jwks_clock.offset += 301  # past the key set's lifetime (5 minutes)
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_unknown_kids_refetch_the_set_at_most_every_few_seconds(
    jwks_server: JwksServer, jwks_clock: MonotonicClock
) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_server.url, issuer=ISSUER))
    assert await verifier.verify(sign(RSA_KEY, "RS256", "rsa-1")) == "alice"
    assert jwks_server.fetches == 1
    for n in range(20):  # a flood of made-up kids costs no fetch while cooling down
        with pytest.raises(Unauthenticated):
            await verifier.verify(sign(RSA_KEY, "RS256", f"made-up-{n}"))
    assert jwks_server.fetches == 1
    # A key rotated in is found once the few seconds have passed, without a restart.
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.keys = [*jwks_server.keys, jwk(rotated, "rsa-2", "RS256")]
    jwks_clock.offset += 6
    assert await verifier.verify(sign(rotated, "RS256", "rsa-2")) == "alice"
    assert jwks_server.fetches == 2


def test_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(AuthConfig())
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(AuthConfig(secret="s" * 40, jwks_url="http://127.0.0.1/jwks"))


SECRET = "s" * 32


async def test_a_verified_token_is_remembered_until_its_expiry_and_no_longer() -> None:
    verifier = TokenVerifier(AuthConfig(secret=SECRET))
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "exp": now + 2}, SECRET, algorithm="HS256")
    assert await verifier.verify(token) == "alice"
    assert await verifier.verify(token) == "alice"  # from the cache
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(Unauthenticated):
        await verifier.verify(tampered)
    expired = jwt.encode({"sub": "bob", "exp": now - 60}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(expired)
    assert set(verifier._verified) == {token}
    assert verifier._verified[token] == ("alice", now + 2)  # until its `exp`
    # While an entry is valid it answers; past its expiry it is dropped, the token decoded.
    verifier._verified[token] = ("mallory", time.time() + 60)
    assert await verifier.verify(token) == "mallory"
    verifier._verified[token] = ("mallory", time.time() - 1)
    assert await verifier.verify(token) == "alice"


async def test_the_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_CACHED_TOKENS", 3)
    verifier = TokenVerifier(AuthConfig(secret=SECRET))
    exp = int(time.time()) + 60
    tokens = [jwt.encode({"sub": f"u{i}", "exp": exp}, SECRET, algorithm="HS256") for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    assert list(verifier._verified) == tokens[2:]
