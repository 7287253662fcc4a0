"""Settings from the environment, validated up front with a message that names each missing or
invalid variable as the operator sets it. No I/O here.

The variables are the operator contract (README.md, "Configuration"): their names never change.
They are grouped into one section per component; each section validates its own variables and
turns them into its component's configuration, and a section loads on its own for commands
that need only it (`photovault migrate` reads the database section alone). `Settings` is every
section at once, what `photovault serve` and the Lambda handler load.

The sections are frozen dataclasses whose field types carry their bounds (`msgspec.Meta`);
msgspec checks each value against its type. Not pydantic-settings: importing pydantic and
building these models was about a quarter of the Lambda init (issue 18)."""

# No `from __future__ import annotations`: the loader reads each field's type (with its bounds)
# from the dataclass as an object, without evaluating annotations at load time.

import dataclasses
import hashlib
import hmac
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec
from msgspec import Meta

from photovault_server.adapters.s3_endpoints import environment_credentials
from photovault_server.adapters.sigv4 import Credentials
from photovault_server.auth import AuthConfig
from photovault_server.core import ServiceConfig, UrlPolicy, default_cache_margin
from photovault_server.core.image_formats import DEFAULT_ALLOWED_TYPES, FORMATS
from photovault_server.core.models import VariantSpec

# Kept here, not imported from the image pipeline: loading settings must not load Pillow.
VARIANT_CONTENT_TYPES = ("image/webp", "image/jpeg", "image/avif")
_VARIANT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")

MiB = 1024 * 1024
GiB = 1024 * MiB

# A field's own rule beyond its type: raises ValueError with what is wrong (returns anything).
Check = Callable[[Any], object]


def _env(
    *names: str,
    default: Any = dataclasses.MISSING,
    factory: Callable[[], Any] | None = None,
    secret: bool = False,
    check: Check | None = None,
) -> Any:
    """The variable(s) a field is read from; the first is the one error messages name.
    A secret is left out of the settings' repr."""
    metadata = {"env": names, "check": check}
    if factory is not None:
        return field(default_factory=factory, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def _explicit_host(value: str) -> None:
    host, _, port = value.rpartition(":")
    if value and (not host or not port.isdigit()):
        raise ValueError("must be host:port with an explicit host (e.g. 127.0.0.1:9464)")


def _known_types(value: list[str]) -> None:
    unknown = sorted(set(value) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown image types {unknown}; known: {', '.join(FORMATS)}")
    if not value:
        raise ValueError("must list at least one type")


def _http_url(value: str) -> None:
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")


def _variant_format(value: str) -> None:
    if value not in VARIANT_CONTENT_TYPES:
        raise ValueError(f"must be one of {', '.join(VARIANT_CONTENT_TYPES)}")


def parse_variants(value: str) -> tuple[VariantSpec, ...]:
    """`name:longest_side,...` (e.g. `thumb:320,preview:1600`)."""
    specs = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        name, _, side = part.partition(":")
        if not _VARIANT_NAME.fullmatch(name) or not side.isdigit():
            raise ValueError(f"{part!r} is not name:pixels (name: a-z, 0-9, _ or -)")
        if not 16 <= int(side) <= 8192:
            raise ValueError(f"{part!r}: the longest side must be 16 to 8192 pixels")
        specs.append(VariantSpec(name, int(side)))
    if not specs:
        raise ValueError("must name at least one variant")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError("variant names must be unique")
    return tuple(specs)


# Every section is frozen, and built by keyword only (so that sections with required variables
# combine into `Settings` in any order). A section may define `_consistent`, its rule across
# its variables: it returns what is wrong, or None.


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """`photovault serve`'s listeners and shutdown, and the gateway's CORS origins."""

    grpc_addr: str = _env("PHOTOVAULT_GRPC_ADDR", default="127.0.0.1:50051")
    http_addr: str = _env("PHOTOVAULT_HTTP_ADDR", default="127.0.0.1:8080")
    # Prometheus /metrics of `photovault serve`; empty to switch it off. Loopback by default;
    # the host must be explicit (":9464" would listen on every interface).
    metrics_addr: str = _env(
        "PHOTOVAULT_METRICS_ADDR", default="127.0.0.1:9464", check=_explicit_host
    )
    # gRPC server reflection (grpcurl without the protos); off to hide the API's shape.
    grpc_reflection: bool = _env("PHOTOVAULT_GRPC_REFLECTION", default=True)
    shutdown_grace_seconds: Annotated[float, Meta(ge=0, le=300)] = _env(
        "PHOTOVAULT_SHUTDOWN_GRACE_SECONDS", default=10.0
    )
    # After SIGTERM, calls are still served this long with health NOT_SERVING, so that load
    # balancers and keep-alive clients move away before the listeners close.
    shutdown_lame_duck_seconds: Annotated[float, Meta(ge=0, le=60)] = _env(
        "PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", default=1.0
    )
    # Comma-separated. (RUF009: `_env` is a dataclasses.field, its list made per instance.)
    cors_origins: list[str] = _env("PHOTOVAULT_CORS_ORIGINS", factory=list)  # noqa: RUF009
    # A gRPC connection is sent GOAWAY after this long (the calls in flight get the shutdown
    # grace), so clients reconnect and connection-level balancers spread them over new
    # processes too; 0: connections live forever.
    grpc_max_connection_age_seconds: Annotated[float, Meta(ge=0)] = _env(
        "PHOTOVAULT_GRPC_MAX_CONNECTION_AGE_SECONDS", default=300.0
    )


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """Postgres: the asyncpg pool."""

    database_url: str = _env(
        "DATABASE_URL", default="postgresql://postgres@127.0.0.1:5432/photovault"
    )
    # A direct connection for `photovault migrate` when DATABASE_URL goes through a
    # transaction-pooling proxy (PgBouncer, RDS Proxy), whose sessions do not hold the
    # migrations' advisory lock nor run CREATE INDEX CONCURRENTLY.
    database_migration_url: str = _env("DATABASE_MIGRATION_URL", default="")
    # A streaming replica (or a reader endpoint) for the users' reads of their photos; empty:
    # every query on DATABASE_URL. Its pool has the same sizes and timeouts as the primary's.
    database_read_url: str = _env("DATABASE_READ_URL", default="")
    # The replica's lag beyond which every read goes to the primary; it also bounds how long a
    # user's write keeps their reads off a replica that has not replayed it (read_router.py).
    db_read_max_lag_ms: Annotated[int, Meta(ge=10, le=600_000)] = _env(
        "PHOTOVAULT_DB_READ_MAX_LAG_MS", default=2000
    )
    # 0: connect on first use, so the process starts (answering UNAVAILABLE) while Postgres is down.
    db_pool_min_size: Annotated[int, Meta(ge=0)] = _env("PHOTOVAULT_DB_POOL_MIN_SIZE", default=0)
    db_pool_max_size: Annotated[int, Meta(ge=1)] = _env("PHOTOVAULT_DB_POOL_MAX_SIZE", default=10)
    # 0 behind a transaction-pooling proxy (PgBouncer, RDS Proxy); asyncpg's default otherwise.
    db_statement_cache_size: Annotated[int, Meta(ge=0)] = _env(
        "PHOTOVAULT_DB_STATEMENT_CACHE_SIZE", default=100
    )
    db_command_timeout_seconds: Annotated[float, Meta(gt=0)] = _env(
        "PHOTOVAULT_DB_COMMAND_TIMEOUT_SECONDS", default=10.0
    )
    # The longest wait for a free pool connection; then the call is shed (UNAVAILABLE).
    db_acquire_timeout_ms: Annotated[int, Meta(ge=1, le=60_000)] = _env(
        "PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS", default=1000
    )

    @property
    def migration_url(self) -> str:
        return self.database_migration_url or self.database_url

    def _consistent(self) -> str | None:
        if self.db_pool_min_size > self.db_pool_max_size:
            return "PHOTOVAULT_DB_POOL_MIN_SIZE must not exceed the max size"
        return None


@dataclass(frozen=True, kw_only=True)
class CacheSettings:
    """The URL cache: Redis, and the in-process tier in front of it."""

    redis_url: str = _env("REDIS_URL", default="redis://127.0.0.1:6379/0")
    # `cluster`: Redis Cluster, Valkey cluster, ElastiCache cluster mode or Serverless; REDIS_URL
    # names any one node.
    redis_mode: Literal["standalone", "cluster"] = _env(
        "PHOTOVAULT_REDIS_MODE", default="standalone"
    )
    url_cache: Literal["redis", "off"] = _env("PHOTOVAULT_URL_CACHE", default="redis")
    # Entries of the in-process tier in front of Redis; 0 switches it off.
    local_url_cache_size: Annotated[int, Meta(ge=0, le=1_000_000)] = _env(
        "PHOTOVAULT_LOCAL_URL_CACHE_SIZE", default=10_000
    )
    # How long the in-process tier answers for Redis before asking it again, so that a Redis
    # restarted empty is repopulated within seconds (adapters/local_cache.py).
    local_url_cache_seconds: Annotated[float, Meta(gt=0, le=3600)] = _env(
        "PHOTOVAULT_LOCAL_URL_CACHE_SECONDS", default=5.0
    )
    redis_timeout_ms: Annotated[int, Meta(ge=1, le=5000)] = _env(
        "PHOTOVAULT_REDIS_TIMEOUT_MS", default=50
    )

    @property
    def redis_timeout(self) -> timedelta:
        """The bound on every cache call (connect included)."""
        return timedelta(milliseconds=self.redis_timeout_ms)


@dataclass(frozen=True, kw_only=True)
class S3Settings:
    """The bucket, where its URLs point, and the credentials that sign them."""

    bucket: Annotated[str, Meta(min_length=3, max_length=63)] = _env("PHOTOVAULT_BUCKET")
    aws_region: str = _env("AWS_REGION", "AWS_DEFAULT_REGION", default="us-east-1")
    s3_addressing_style: Literal["auto", "path", "virtual"] = _env(
        "PHOTOVAULT_S3_ADDRESSING_STYLE", default="auto"
    )
    # Read by botocore itself; known here only to choose the addressing style (see below).
    s3_endpoint_url: str = _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", default="")
    # Temporary credentials whose expiry botocore cannot see (Lambda's environment credentials):
    # no URL they sign lives longer than this.
    temporary_credentials_url_cap_seconds: Annotated[int, Meta(ge=60, le=7 * 24 * 3600)] = _env(
        "PHOTOVAULT_TEMP_CREDENTIALS_URL_CAP_SECONDS", default=3600
    )
    # botocore's environment credentials, read here (with the rest of the environment) so that
    # URLs can be signed without building a botocore client; botocore reads them too.
    aws_access_key_id: str = _env("AWS_ACCESS_KEY_ID", default="", secret=True)
    aws_secret_access_key: str = _env("AWS_SECRET_ACCESS_KEY", default="", secret=True)
    aws_session_token: str = _env(
        "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", default="", secret=True
    )
    aws_credential_expiration: str = _env("AWS_CREDENTIAL_EXPIRATION", default="")

    def effective_addressing_style(self) -> Literal["path", "virtual"] | Literal["auto"]:
        """`auto` on AWS means virtual-hosted on the bucket's regional endpoint
        (bucket.s3.<region>.amazonaws.com): botocore's own `auto` presigns on the global
        endpoint, which redirects for buckets outside us-east-1 and breaks browser uploads.
        Dotted bucket names stay on path style (their TLS certificate would not match), and an
        S3-compatible endpoint (moto, LocalStack, MinIO) keeps botocore's choice (path for IPs)."""
        if self.s3_addressing_style != "auto" or self.s3_endpoint_url:
            return self.s3_addressing_style
        return "path" if "." in self.bucket else "virtual"

    def environment_credentials(self) -> Credentials | None:
        """The static keys botocore would take first; None when it must resolve them itself."""
        return environment_credentials(
            {
                "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
                "AWS_SESSION_TOKEN": self.aws_session_token,
                "AWS_CREDENTIAL_EXPIRATION": self.aws_credential_expiration,
            }
        )

    @property
    def temporary_credentials_cap(self) -> timedelta:
        return timedelta(seconds=self.temporary_credentials_url_cap_seconds)


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """Token verification, and the key of page tokens."""

    jwt_secret: str = _env("PHOTOVAULT_JWT_SECRET", default="", secret=True)
    jwks_url: str = _env("PHOTOVAULT_JWKS_URL", default="")
    jwt_issuer: str = _env("PHOTOVAULT_JWT_ISSUER", default="")
    jwt_audience: str = _env("PHOTOVAULT_JWT_AUDIENCE", default="")
    page_token_secret: str = _env("PHOTOVAULT_PAGE_TOKEN_SECRET", default="", secret=True)
    # Lambda behind an API Gateway HTTP API JWT authorizer: take the user from the authorizer's
    # verified claims instead of verifying the token a second time.
    trust_api_gateway_authorizer: bool = _env(
        "PHOTOVAULT_TRUST_API_GATEWAY_AUTHORIZER", default=False
    )

    def _consistent(self) -> str | None:
        if bool(self.jwt_secret) == bool(self.jwks_url):
            return "set exactly one of PHOTOVAULT_JWT_SECRET or PHOTOVAULT_JWKS_URL"
        if self.jwt_secret and len(self.jwt_secret) < 32:
            return "PHOTOVAULT_JWT_SECRET must be at least 32 characters"
        if not self.jwt_secret and len(self.page_token_secret) < 16:
            return "with PHOTOVAULT_JWKS_URL, set PHOTOVAULT_PAGE_TOKEN_SECRET (16+)"
        if self.jwks_url and not self.jwt_issuer:
            # A key set may sign for many tenants: without the issuer, any of them is accepted.
            return "with PHOTOVAULT_JWKS_URL, set PHOTOVAULT_JWT_ISSUER"
        return None

    def auth_config(self) -> AuthConfig:
        return AuthConfig(
            secret=self.jwt_secret,
            jwks_url=self.jwks_url,
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
        )

    def page_token_key(self) -> bytes:
        if self.page_token_secret:
            return self.page_token_secret.encode()
        # Derived, not reused: a page token's MAC never doubles as a JWT signature.
        return hmac.new(
            self.jwt_secret.encode(), b"photovault page tokens", hashlib.sha256
        ).digest()


_WEEK = 7 * 24 * 3600


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    """The core's policy: URL lifetimes and caching, uploads, quotas, public URLs."""

    url_ttl_seconds: Annotated[int, Meta(ge=60, le=_WEEK)] = _env(
        "PHOTOVAULT_URL_TTL_SECONDS", default=7200
    )
    cache_margin_seconds: Annotated[int, Meta(ge=0)] | None = _env(
        "PHOTOVAULT_CACHE_MARGIN_SECONDS", default=None
    )
    upload_url_ttl_seconds: Annotated[int, Meta(ge=60, le=3600)] = _env(
        "PHOTOVAULT_UPLOAD_URL_TTL_SECONDS", default=900
    )
    confirm_window_seconds: Annotated[int, Meta(ge=0, le=_WEEK)] = _env(
        "PHOTOVAULT_CONFIRM_WINDOW_SECONDS", default=3600
    )
    max_upload_bytes: Annotated[int, Meta(ge=1, le=5 * GiB)] = _env(
        "PHOTOVAULT_MAX_UPLOAD_BYTES", default=25 * MiB
    )
    quota_bytes: Annotated[int, Meta(ge=0)] = _env("PHOTOVAULT_QUOTA_BYTES", default=10 * GiB)
    # Unconfirmed uploads one user may hold at once: each is a row and an object to sweep.
    max_pending_uploads: Annotated[int, Meta(ge=1, le=100_000)] = _env(
        "PHOTOVAULT_MAX_PENDING_UPLOADS", default=100
    )
    max_multipart_upload_bytes: Annotated[int, Meta(ge=1, le=5 * 1024 * GiB)] = _env(
        "PHOTOVAULT_MAX_MULTIPART_UPLOAD_BYTES", default=5 * GiB
    )
    multipart_upload_ttl_seconds: Annotated[int, Meta(ge=60, le=_WEEK)] = _env(
        "PHOTOVAULT_MULTIPART_UPLOAD_TTL_SECONDS", default=86400
    )
    # How long a trashed photo stays restorable before the sweep deletes it for good.
    trash_retention_days: Annotated[int, Meta(ge=1, le=3650)] = _env(
        "PHOTOVAULT_TRASH_RETENTION_DAYS", default=30
    )
    # Comma-separated. (RUF009: `_env` is a dataclasses.field, its list made per instance.)
    allowed_content_types: list[str] = _env(  # noqa: RUF009
        "PHOTOVAULT_ALLOWED_CONTENT_TYPES",
        factory=lambda: list(DEFAULT_ALLOWED_TYPES),
        check=_known_types,
    )
    public_base_url: str = _env("PHOTOVAULT_PUBLIC_BASE_URL", default="", check=_http_url)

    def _consistent(self) -> str | None:
        margin = self.cache_margin_seconds
        if margin is not None and margin >= self.url_ttl_seconds:
            return "PHOTOVAULT_CACHE_MARGIN_SECONDS must be below the URL lifetime"
        return None

    def service_config(self) -> ServiceConfig:
        ttl = timedelta(seconds=self.url_ttl_seconds)
        margin = (
            timedelta(seconds=self.cache_margin_seconds)
            if self.cache_margin_seconds is not None
            else default_cache_margin(ttl)
        )
        return ServiceConfig(
            urls=UrlPolicy(
                download_ttl=ttl, cache_margin=margin, public_base_url=self.public_base_url
            ),
            allowed_content_types=tuple(self.allowed_content_types),
            max_upload_bytes=self.max_upload_bytes,
            quota_bytes=self.quota_bytes,
            max_pending_uploads=self.max_pending_uploads,
            upload_url_ttl=timedelta(seconds=self.upload_url_ttl_seconds),
            confirm_window=timedelta(seconds=self.confirm_window_seconds),
            max_multipart_upload_bytes=self.max_multipart_upload_bytes,
            multipart_upload_ttl=timedelta(seconds=self.multipart_upload_ttl_seconds),
            trash_retention=timedelta(days=self.trash_retention_days),
        )


@dataclass(frozen=True, kw_only=True)
class CdnSettings:
    """CloudFront in front of the bucket: with all three set (a key inline or in a file),
    private photos' URLs are CloudFront signed URLs instead of S3 presigned URLs."""

    cdn_base_url: str = _env("PHOTOVAULT_CDN_BASE_URL", default="")
    # The active key of the distribution's key group: switching it signs new URLs with the
    # new key; keep the previous public key in the key group for a URL lifetime.
    cdn_key_pair_id: str = _env("PHOTOVAULT_CDN_KEY_PAIR_ID", default="")
    cdn_private_key: str = _env("PHOTOVAULT_CDN_PRIVATE_KEY", default="", secret=True)
    cdn_private_key_file: str = _env("PHOTOVAULT_CDN_PRIVATE_KEY_FILE", default="")

    def _consistent(self) -> str | None:
        given = {
            "PHOTOVAULT_CDN_BASE_URL": bool(self.cdn_base_url),
            "PHOTOVAULT_CDN_KEY_PAIR_ID": bool(self.cdn_key_pair_id),
            "PHOTOVAULT_CDN_PRIVATE_KEY or PHOTOVAULT_CDN_PRIVATE_KEY_FILE": bool(
                self.cdn_private_key or self.cdn_private_key_file
            ),
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, ok in given.items() if not ok)
            return f"the CDN needs {missing} too"
        if self.cdn_private_key and self.cdn_private_key_file:
            return "set one of PHOTOVAULT_CDN_PRIVATE_KEY or PHOTOVAULT_CDN_PRIVATE_KEY_FILE"
        if self.cdn_base_url and not self.cdn_base_url.startswith("https://"):
            return "PHOTOVAULT_CDN_BASE_URL must be an https:// URL"
        return None

    @property
    def cdn_enabled(self) -> bool:
        return bool(self.cdn_base_url)


@dataclass(frozen=True, kw_only=True)
class AdmissionSettings:
    """Load shedding and fairness, checked by the call pipeline before any handler runs:
    a cap on the calls in progress per process, and a per-user rate in Redis."""

    # Calls in progress in this process (every transport together) beyond which new ones are
    # shed with UNAVAILABLE; 0: no cap.
    max_concurrent_calls: Annotated[int, Meta(ge=0)] = _env(
        "PHOTOVAULT_MAX_CONCURRENT_CALLS", default=256
    )
    # Calls per second per user, over every process (a bucket in Redis); 0: off.
    rate_limit_per_second: Annotated[float, Meta(ge=0)] = _env(
        "PHOTOVAULT_RATE_LIMIT_PER_SECOND", default=0.0
    )
    # Calls a user may make at once after being idle; 0: one second's worth of the rate.
    rate_limit_burst: Annotated[int, Meta(ge=0)] = _env("PHOTOVAULT_RATE_LIMIT_BURST", default=0)

    @property
    def effective_rate_limit_burst(self) -> int:
        return self.rate_limit_burst or max(1, math.ceil(self.rate_limit_per_second))


@dataclass(frozen=True, kw_only=True)
class TracingSettings:
    """OpenTelemetry: on when an OTLP endpoint is set (the standard variables; the exporter
    reads the rest of OTEL_EXPORTER_OTLP_* itself)."""

    otel_exporter_otlp_endpoint: str = _env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", default=""
    )
    otel_service_name: str = _env("OTEL_SERVICE_NAME", default="photovault")


@dataclass(frozen=True, kw_only=True)
class ProcessingSettings:
    """The background worker's image variants and decoding limits."""

    variants: str = _env(
        "PHOTOVAULT_VARIANTS", default="thumb:320,preview:1600", check=parse_variants
    )
    variant_format: str = _env(
        "PHOTOVAULT_VARIANT_FORMAT", default="image/webp", check=_variant_format
    )
    max_image_pixels: Annotated[int, Meta(ge=1, le=2_000_000_000)] = _env(
        "PHOTOVAULT_MAX_IMAGE_PIXELS", default=100_000_000
    )

    def variant_specs(self) -> tuple[VariantSpec, ...]:
        return parse_variants(self.variants)


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    """The log's level and format (JSON lines for collectors, or for a terminal)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _env(
        "PHOTOVAULT_LOG_LEVEL", default="INFO"
    )
    log_format: Literal["json", "console"] = _env("PHOTOVAULT_LOG_FORMAT", default="json")


@dataclass(frozen=True, kw_only=True)
class Settings(
    ServerSettings,
    DatabaseSettings,
    CacheSettings,
    S3Settings,
    AuthSettings,
    LimitSettings,
    CdnSettings,
    AdmissionSettings,
    TracingSettings,
    ProcessingSettings,
    LogSettings,
):
    """Every section: what a running service (serve, Lambda, sweep, worker) needs. Being each
    section, it is passed wherever one section is expected."""

    def service_config(self) -> ServiceConfig:
        """The core's policy, knowing which variants the worker makes."""
        config = LimitSettings.service_config(self)
        return msgspec.structs.replace(
            config, variant_names=tuple(s.name for s in self.variant_specs())
        )


def variables(section: type = Settings) -> list[str]:
    """Every environment variable a section reads, as the operator sets it."""
    return [name for spec in _fields(section) for name in spec.names]


def default(section: type, variable: str) -> object:
    """The value a section takes when `variable` is not set."""
    for f in dataclasses.fields(section):
        if variable in f.metadata["env"]:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            return f.default
    raise KeyError(variable)


class SettingsError(Exception):
    """Raised with one line per bad variable, named as the operator sets it."""


S = TypeVar("S")


def load_section(section: type[S], **overrides: object) -> S:
    """One section (or `Settings`, every one) from the environment; `overrides` are variables
    by name, as in the environment. Names are matched without regard to case."""
    given = _given(overrides)
    values: dict[str, object] = {}
    problems: list[str] = []
    for spec in _fields(section):
        name, raw = _first_set(spec.names, given)
        if name is None:
            if spec.required:
                problems.append(f"  {spec.names[0]}: required, not set")
            continue
        try:
            values[spec.attr] = spec.read(raw)
        except ValueError as exc:
            problems.append(f"  {name}: {exc}")
    if not problems:
        loaded = section(**values)
        problems = [f"  settings: {p}" for p in _inconsistencies(loaded)]
        if not problems:
            return loaded
    raise SettingsError("invalid configuration:\n" + "\n".join(problems))


def load_settings(**overrides: object) -> Settings:
    return load_section(Settings, **overrides)


# --- reading one variable ------------------------------------------------------------------


def _given(overrides: Mapping[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """The overrides, then the environment, both by lower-cased name."""
    return (
        {k.lower(): v for k, v in overrides.items()},
        {k.lower(): v for k, v in os.environ.items()},
    )


def _first_set(
    names: tuple[str, ...], given: tuple[dict[str, object], dict[str, object]]
) -> tuple[str | None, object]:
    """The first of a field's names that is set, in the overrides before the environment."""
    for source in given:
        for name in names:
            if name.lower() in source:
                return name, source[name.lower()]
    return None, None


def _inconsistencies(loaded: object) -> list[str]:
    """What each section's rule across its variables finds wrong."""
    found = []
    for klass in type(loaded).__mro__:
        rule = vars(klass).get("_consistent")
        if rule is not None and (problem := rule(loaded)) is not None:
            found.append(problem)
    return found


# The words a boolean variable may be, in any case (as pydantic read them).
_BOOLEANS = {
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
    **dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
}


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise ValueError(f"must be true or false (or 1/0, yes/no, on/off), not {text!r}") from None


def _integer(text: str) -> int:
    """Python's int syntax (spaces around, `_` between digits), and a zero fraction (`60.0`)."""
    whole, dot, fraction = text.strip().partition(".")
    try:
        if dot and fraction.strip("0"):
            raise ValueError
        return int(whole)
    except ValueError:
        raise ValueError(f"must be an integer, not {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, not {text!r}") from None


def _items(text: str) -> list[str]:
    """A comma-separated list; blanks around and between items are dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


_FROM_TEXT: dict[object, Callable[[str], object]] = {
    bool: _boolean,
    int: _integer,
    float: _number,
    list: _items,
}


@dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    names: tuple[str, ...]
    type: Any  # with its bounds, as msgspec checks it
    from_text: Callable[[str], object] | None  # how the environment's text becomes a value
    check: Check | None
    required: bool
    choices: tuple[str, ...]  # a Literal's values, named when another is given

    def read(self, raw: object) -> object:
        """The field's value from a variable (text, or a value given as an override); raises
        ValueError with what is wrong."""
        if isinstance(raw, str) and self.from_text is not None:
            raw = self.from_text(raw)
        try:
            value = msgspec.convert(raw, self.type, strict=False)
        except msgspec.ValidationError as exc:
            if self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}") from None
            raise ValueError(str(exc).removesuffix(" - at `$`")) from None
        if self.check is not None:
            self.check(value)
        return value


_FIELDS: dict[type, tuple[_Field, ...]] = {}


def _fields(section: type) -> tuple[_Field, ...]:
    """A section's fields as read, worked out on its first load."""
    found = _FIELDS.get(section)
    if found is None:
        found = _FIELDS[section] = tuple(_field(f) for f in dataclasses.fields(section))
    return found


def _field(f: dataclasses.Field[Any]) -> _Field:
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    return _Field(
        attr=f.name,
        names=f.metadata["env"],
        type=f.type,
        from_text=_FROM_TEXT.get(_base(f.type)),
        check=f.metadata["check"],
        required=required,
        choices=get_args(f.type) if get_origin(f.type) is Literal else (),
    )


def _base(tp: Any) -> object:
    """The plain type under bounds and `| None`: `Annotated[int, Meta(ge=0)] | None` -> int."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            tp = next(arm for arm in get_args(tp) if arm is not type(None))
        else:
            return origin or tp
