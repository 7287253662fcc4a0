"""Bearer-token verification with PyJWT: HS256 with a shared secret, or RS256/ES256 with keys
from a JWKS URL (cached by PyJWKClient). The user id is the token's `sub`.

JWKS mode always checks the issuer: a key set may be shared by many tenants (Firebase, a
region's Cognito pools), so the signature alone does not say whose token it is. The audience,
when configured, is the token's `aud`, or its `client_id` when it has no `aud` (Cognito access
tokens). Each token is checked with the algorithm of the key its `kid` names, never one the
token picks. The key set is cached for `jwks_cache_seconds` (a revoked key stops working by
then) and refetched for an unknown `kid` at most once per `jwks_refetch_seconds`.

Transport-agnostic: the gRPC interceptor, the web gateway and the Lambda handler all call
`TokenVerifier.user_id(authorization_header)`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

import jwt
from msgspec import Struct

from photovault_server.core.errors import Unauthenticated

# A user id becomes part of object keys (users/{sub}/...): keep it to characters that are safe
# there and in URLs, and never '.'/'..' alone.
_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@|:+=-]{0,127}")
_ASYMMETRIC = ("RS256", "ES256")
# Verified HS256 tokens kept until their expiry: a client sends the same token with every call,
# and decoding it again (base64, JSON, HMAC, the claim checks) is most of authentication's cost.
# Keyed by the whole token, so a changed byte is verified afresh. Bounded: the oldest goes.
MAX_CACHED_TOKENS = 10_000


class AuthConfig(Struct, frozen=True):
    secret: str = ""
    jwks_url: str = ""
    issuer: str = ""
    audience: str = ""
    leeway_seconds: int = 30
    jwks_cache_seconds: float = 300
    jwks_refetch_seconds: float = 5

    def __repr__(self) -> str:
        # Never the shared secret (it signs tokens); where the keys come from is enough.
        source = "secret" if self.secret else f"jwks_url={self.jwks_url!r}"
        return f"AuthConfig({source}, issuer={self.issuer!r}, audience={self.audience!r})"


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        if bool(config.secret) == bool(config.jwks_url):
            raise ValueError("configure exactly one of a JWT secret (HS256) or a JWKS URL")
        if config.jwks_url and not config.issuer:
            raise ValueError("a JWKS URL needs the issuer its tokens must come from")
        self._config = config
        # No per-kid cache (`cache_keys`): its entries never expire, so a key removed from the
        # set would verify tokens until a restart. The set itself is cached for a bounded time.
        self._jwks = (
            jwt.PyJWKClient(
                config.jwks_url,
                cache_keys=False,
                lifespan=config.jwks_cache_seconds,
                cooldown_duration=config.jwks_refetch_seconds,
                timeout=5,
            )
            if config.jwks_url
            else None
        )
        # token -> (user id, expiry in epoch seconds). Not in JWKS mode: there a token must stop
        # verifying once its key leaves the set (within the set's cache lifetime), which only
        # asking PyJWKClient tells.
        self._verified: dict[str, tuple[str, float]] = {}

    async def user_id(self, authorization: str | None) -> str:
        """The `sub` of a valid `Bearer <jwt>` header, else Unauthenticated."""
        if not authorization:
            raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "authorization must be 'Bearer <token>'", reason="TOKEN_MALFORMED"
            )
        return await self.verify(token.strip())

    async def verify(self, token: str) -> str:
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                return cached[0]
            del self._verified[token]
        cfg = self._config
        try:
            key: jwt.PyJWK | str
            if self._jwks is not None:
                # PyJWKClient fetches with urllib (blocking): keep it off the event loop.
                key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                if key.algorithm_name not in _ASYMMETRIC:
                    raise Unauthenticated(
                        "token signing key has an unsupported algorithm", reason="TOKEN_INVALID"
                    )
                # The key's own algorithm only: a header naming another is refused.
                algorithms = [key.algorithm_name]
            else:
                key, algorithms = cfg.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=cfg.issuer or None,
                leeway=cfg.leeway_seconds,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": False,  # checked below: `aud`, or Cognito's `client_id`
                    "verify_iss": bool(cfg.issuer),
                },
            )
        except jwt.PyJWKClientError as exc:
            raise Unauthenticated(
                "token signing key could not be found", reason="TOKEN_INVALID"
            ) from exc
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token has expired", reason="TOKEN_EXPIRED") from exc
        except jwt.PyJWTError as exc:
            # PyJWT's messages name the failed check (audience, issuer, signature) and no secret.
            raise Unauthenticated(f"invalid token: {exc}", reason="TOKEN_INVALID") from exc
        except (TypeError, ValueError) as exc:
            # A key that does not fit the algorithm (an RSA key for ES256) fails in the
            # cryptography layer; the caller only learns that the token is not valid.
            raise Unauthenticated(
                "invalid token: key and algorithm do not match", reason="TOKEN_INVALID"
            ) from exc
        if cfg.audience and not audience_matches(claims, cfg.audience):
            raise Unauthenticated("invalid token: audience does not match", reason="TOKEN_INVALID")
        user = user_id_from_claims(claims)
        if self._jwks is None:
            self._remember(token, user, claims["exp"])
        return user

    def _remember(self, token: str, user: str, expires: float) -> None:
        # `exp` itself, not PyJWT's leeway after it: past it, the token is decoded afresh.
        if len(self._verified) >= MAX_CACHED_TOKENS:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (user, float(expires))


def audience_matches(claims: Mapping[str, Any], audience: str) -> bool:
    """The token is for `audience`: its `aud` (a string or a list) names it, or, only when it
    has no `aud`, its `client_id` is it (Cognito access tokens carry the app client there)."""
    if "aud" in claims:
        aud = claims["aud"]
        return aud == audience or (isinstance(aud, list) and audience in aud)
    return claims.get("client_id") == audience


def user_id_from_claims(claims: Mapping[str, Any]) -> str:
    """The user id of verified claims (ours, or an API Gateway JWT authorizer's)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise Unauthenticated(
            "token subject must be 1-128 characters of A-Z a-z 0-9 . _ @ | : + = -",
            reason="TOKEN_INVALID",
        )
    return subject


def mint_token(
    secret: str,
    user_id: str,
    *,
    ttl_seconds: int = 24 * 3600,
    issuer: str = "",
    audience: str = "",
) -> str:
    """An HS256 token for development and tests (`photovault token --user ID`)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "nbf": now, "exp": now + ttl_seconds}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
