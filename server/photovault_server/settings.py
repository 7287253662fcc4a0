"""Settings from the environment, validated up front with a message that names each missing or
invalid variable as the operator sets it. No I/O here.

The variables are the operator contract (README.md, "Configuration"): their names never change.
They are grouped into one section per component; each section validates its own variables and
turns them into its component's configuration, and a section loads on its own for commands
that need only it (`photovault migrate` reads the database section alone). `Settings` is every
section at once, what `photovault serve` and the Lambda handler load."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from msgspec.structs import replace
from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


def _env(*names: str) -> AliasChoices:
    """The variable(s) a field is read from; the first is the one error messages name."""
    return AliasChoices(*names)


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Section(BaseSettings):
    # defer_build: a section's validator is built when first used, not at import (the Lambda
    # init loads `Settings` alone, which has every field: building each section too cost ~10 ms).
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=False, frozen=True, defer_build=True
    )


class ServerSettings(_Section):
    """`photovault serve`'s listeners and shutdown, and the gateway's CORS origins."""

    grpc_addr: str = Field("127.0.0.1:50051", validation_alias=_env("PHOTOVAULT_GRPC_ADDR"))
    http_addr: str = Field("127.0.0.1:8080", validation_alias=_env("PHOTOVAULT_HTTP_ADDR"))
    # Prometheus /metrics of `photovault serve`; empty to switch it off. Loopback by default;
    # the host must be explicit (":9464" would listen on every interface).
    metrics_addr: str = Field("127.0.0.1:9464", validation_alias=_env("PHOTOVAULT_METRICS_ADDR"))
    # gRPC server reflection (grpcurl without the protos); off to hide the API's shape.
    grpc_reflection: bool = Field(True, validation_alias=_env("PHOTOVAULT_GRPC_REFLECTION"))
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, le=300, validation_alias=_env("PHOTOVAULT_SHUTDOWN_GRACE_SECONDS")
    )
    # After SIGTERM, calls are still served this long with health NOT_SERVING, so that load
    # balancers and keep-alive clients move away before the listeners close.
    shutdown_lame_duck_seconds: float = Field(
        1.0, ge=0, le=60, validation_alias=_env("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS")
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("PHOTOVAULT_CORS_ORIGINS")
    )
    # A gRPC connection is sent GOAWAY after this long (the calls in flight get the shutdown
    # grace), so clients reconnect and connection-level balancers spread them over new
    # processes too; 0: connections live forever.
    grpc_max_connection_age_seconds: float = Field(
        300.0, ge=0, validation_alias=_env("PHOTOVAULT_GRPC_MAX_CONNECTION_AGE_SECONDS")
    )

    _split_origins = field_validator("cors_origins", mode="before")(
        classmethod(lambda cls, v: _split(v))
    )

    @field_validator("metrics_addr")
    @classmethod
    def _explicit_metrics_host(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if value and (not host or not port.isdigit()):
            raise ValueError("must be host:port with an explicit host (e.g. 127.0.0.1:9464)")
        return value


class DatabaseSettings(_Section):
    """Postgres: the asyncpg pool."""

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/photovault", validation_alias=_env("DATABASE_URL")
    )
    # A direct connection for `photovault migrate` when DATABASE_URL goes through a
    # transaction-pooling proxy (PgBouncer, RDS Proxy), whose sessions do not hold the
    # migrations' advisory lock nor run CREATE INDEX CONCURRENTLY.
    database_migration_url: str = Field("", validation_alias=_env("DATABASE_MIGRATION_URL"))
    # A streaming replica (or a reader endpoint) for the users' reads of their photos; empty:
    # every query on DATABASE_URL. Its pool has the same sizes and timeouts as the primary's.
    database_read_url: str = Field("", validation_alias=_env("DATABASE_READ_URL"))
    # The replica's lag beyond which every read goes to the primary; it also bounds how long a
    # user's write keeps their reads off a replica that has not replayed it (read_router.py).
    db_read_max_lag_ms: int = Field(
        2000, ge=10, le=600_000, validation_alias=_env("PHOTOVAULT_DB_READ_MAX_LAG_MS")
    )
    # 0: connect on first use, so the process starts (answering UNAVAILABLE) while Postgres is down.
    db_pool_min_size: int = Field(0, ge=0, validation_alias=_env("PHOTOVAULT_DB_POOL_MIN_SIZE"))
    db_pool_max_size: int = Field(10, ge=1, validation_alias=_env("PHOTOVAULT_DB_POOL_MAX_SIZE"))
    # 0 behind a transaction-pooling proxy (PgBouncer, RDS Proxy); asyncpg's default otherwise.
    db_statement_cache_size: int = Field(
        100, ge=0, validation_alias=_env("PHOTOVAULT_DB_STATEMENT_CACHE_SIZE")
    )
    db_command_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("PHOTOVAULT_DB_COMMAND_TIMEOUT_SECONDS")
    )
    # The longest wait for a free pool connection; then the call is shed (UNAVAILABLE).
    db_acquire_timeout_ms: int = Field(
        1000, ge=1, le=60_000, validation_alias=_env("PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS")
    )

    @property
    def migration_url(self) -> str:
        return self.database_migration_url or self.database_url

    @model_validator(mode="after")
    def _pool_bounds(self) -> DatabaseSettings:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("PHOTOVAULT_DB_POOL_MIN_SIZE must not exceed the max size")
        return self


class CacheSettings(_Section):
    """The URL cache: Redis, and the in-process tier in front of it."""

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_env("REDIS_URL"))
    # `cluster`: Redis Cluster, Valkey cluster, ElastiCache cluster mode or Serverless; REDIS_URL
    # names any one node.
    redis_mode: Literal["standalone", "cluster"] = Field(
        "standalone", validation_alias=_env("PHOTOVAULT_REDIS_MODE")
    )
    url_cache: Literal["redis", "off"] = Field(
        "redis", validation_alias=_env("PHOTOVAULT_URL_CACHE")
    )
    # Entries of the in-process tier in front of Redis; 0 switches it off.
    local_url_cache_size: int = Field(
        10_000, ge=0, le=1_000_000, validation_alias=_env("PHOTOVAULT_LOCAL_URL_CACHE_SIZE")
    )
    # How long the in-process tier answers for Redis before asking it again, so that a Redis
    # restarted empty is repopulated within seconds (adapters/local_cache.py).
    local_url_cache_seconds: float = Field(
        5.0, gt=0, le=3600, validation_alias=_env("PHOTOVAULT_LOCAL_URL_CACHE_SECONDS")
    )
    redis_timeout_ms: int = Field(
        50, ge=1, le=5000, validation_alias=_env("PHOTOVAULT_REDIS_TIMEOUT_MS")
    )

    @property
    def redis_timeout(self) -> timedelta:
        """The bound on every cache call (connect included)."""
        return timedelta(milliseconds=self.redis_timeout_ms)


class S3Settings(_Section):
    """The bucket, where its URLs point, and the credentials that sign them."""

    bucket: str = Field(min_length=3, max_length=63, validation_alias=_env("PHOTOVAULT_BUCKET"))
    aws_region: str = Field("us-east-1", validation_alias=_env("AWS_REGION", "AWS_DEFAULT_REGION"))
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", validation_alias=_env("PHOTOVAULT_S3_ADDRESSING_STYLE")
    )
    # Read by botocore itself; known here only to choose the addressing style (see below).
    s3_endpoint_url: str = Field(
        "", validation_alias=_env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    )
    # Temporary credentials whose expiry botocore cannot see (Lambda's environment credentials):
    # no URL they sign lives longer than this.
    temporary_credentials_url_cap_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 24 * 3600,
        validation_alias=_env("PHOTOVAULT_TEMP_CREDENTIALS_URL_CAP_SECONDS"),
    )
    # botocore's environment credentials, read here (with the rest of the environment) so that
    # URLs can be signed without building a botocore client; botocore reads them too.
    aws_access_key_id: str = Field("", repr=False, validation_alias=_env("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: str = Field(
        "", repr=False, validation_alias=_env("AWS_SECRET_ACCESS_KEY")
    )
    aws_session_token: str = Field(
        "", repr=False, validation_alias=_env("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
    )
    aws_credential_expiration: str = Field("", validation_alias=_env("AWS_CREDENTIAL_EXPIRATION"))

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


class AuthSettings(_Section):
    """Token verification, and the key of page tokens."""

    jwt_secret: str = Field("", repr=False, validation_alias=_env("PHOTOVAULT_JWT_SECRET"))
    jwks_url: str = Field("", validation_alias=_env("PHOTOVAULT_JWKS_URL"))
    jwt_issuer: str = Field("", validation_alias=_env("PHOTOVAULT_JWT_ISSUER"))
    jwt_audience: str = Field("", validation_alias=_env("PHOTOVAULT_JWT_AUDIENCE"))
    page_token_secret: str = Field(
        "", repr=False, validation_alias=_env("PHOTOVAULT_PAGE_TOKEN_SECRET")
    )
    # Lambda behind an API Gateway HTTP API JWT authorizer: take the user from the authorizer's
    # verified claims instead of verifying the token a second time.
    trust_api_gateway_authorizer: bool = Field(
        False, validation_alias=_env("PHOTOVAULT_TRUST_API_GATEWAY_AUTHORIZER")
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if bool(self.jwt_secret) == bool(self.jwks_url):
            raise ValueError("set exactly one of PHOTOVAULT_JWT_SECRET or PHOTOVAULT_JWKS_URL")
        if self.jwt_secret and len(self.jwt_secret) < 32:
            raise ValueError("PHOTOVAULT_JWT_SECRET must be at least 32 characters")
        if not self.jwt_secret and len(self.page_token_secret) < 16:
            raise ValueError("with PHOTOVAULT_JWKS_URL, set PHOTOVAULT_PAGE_TOKEN_SECRET (16+)")
        if self.jwks_url and not self.jwt_issuer:
            # A key set may sign for many tenants: without the issuer, any of them is accepted.
            raise ValueError("with PHOTOVAULT_JWKS_URL, set PHOTOVAULT_JWT_ISSUER")
        return self

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


class LimitSettings(_Section):
    """The core's policy: URL lifetimes and caching, uploads, quotas, public URLs."""

    url_ttl_seconds: int = Field(
        7200, ge=60, le=7 * 24 * 3600, validation_alias=_env("PHOTOVAULT_URL_TTL_SECONDS")
    )
    cache_margin_seconds: int | None = Field(
        None, ge=0, validation_alias=_env("PHOTOVAULT_CACHE_MARGIN_SECONDS")
    )
    upload_url_ttl_seconds: int = Field(
        900, ge=60, le=3600, validation_alias=_env("PHOTOVAULT_UPLOAD_URL_TTL_SECONDS")
    )
    confirm_window_seconds: int = Field(
        3600, ge=0, le=7 * 24 * 3600, validation_alias=_env("PHOTOVAULT_CONFIRM_WINDOW_SECONDS")
    )
    max_upload_bytes: int = Field(
        25 * MiB, ge=1, le=5 * GiB, validation_alias=_env("PHOTOVAULT_MAX_UPLOAD_BYTES")
    )
    quota_bytes: int = Field(10 * GiB, ge=0, validation_alias=_env("PHOTOVAULT_QUOTA_BYTES"))
    # Unconfirmed uploads one user may hold at once: each is a row and an object to sweep.
    max_pending_uploads: int = Field(
        100, ge=1, le=100_000, validation_alias=_env("PHOTOVAULT_MAX_PENDING_UPLOADS")
    )
    max_multipart_upload_bytes: int = Field(
        5 * GiB,
        ge=1,
        le=5 * 1024 * GiB,
        validation_alias=_env("PHOTOVAULT_MAX_MULTIPART_UPLOAD_BYTES"),
    )
    multipart_upload_ttl_seconds: int = Field(
        86400,
        ge=60,
        le=7 * 24 * 3600,
        validation_alias=_env("PHOTOVAULT_MULTIPART_UPLOAD_TTL_SECONDS"),
    )
    # How long a trashed photo stays restorable before the sweep deletes it for good.
    trash_retention_days: int = Field(
        30, ge=1, le=3650, validation_alias=_env("PHOTOVAULT_TRASH_RETENTION_DAYS")
    )
    allowed_content_types: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_ALLOWED_TYPES), validation_alias=_env("PHOTOVAULT_ALLOWED_CONTENT_TYPES")
    )
    public_base_url: str = Field("", validation_alias=_env("PHOTOVAULT_PUBLIC_BASE_URL"))

    _split_types = field_validator("allowed_content_types", mode="before")(
        classmethod(lambda cls, v: _split(v))
    )

    @field_validator("allowed_content_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(FORMATS))
        if unknown:
            raise ValueError(f"unknown image types {unknown}; known: {', '.join(FORMATS)}")
        if not value:
            raise ValueError("must list at least one type")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _https_base(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _margin_within_lifetime(self) -> LimitSettings:
        if self.cache_margin_seconds is not None and (
            self.cache_margin_seconds >= self.url_ttl_seconds
        ):
            raise ValueError("PHOTOVAULT_CACHE_MARGIN_SECONDS must be below the URL lifetime")
        return self

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


class CdnSettings(_Section):
    """CloudFront in front of the bucket: with all three set (a key inline or in a file),
    private photos' URLs are CloudFront signed URLs instead of S3 presigned URLs."""

    cdn_base_url: str = Field("", validation_alias=_env("PHOTOVAULT_CDN_BASE_URL"))
    # The active key of the distribution's key group: switching it signs new URLs with the
    # new key; keep the previous public key in the key group for a URL lifetime.
    cdn_key_pair_id: str = Field("", validation_alias=_env("PHOTOVAULT_CDN_KEY_PAIR_ID"))
    cdn_private_key: str = Field(
        "", repr=False, validation_alias=_env("PHOTOVAULT_CDN_PRIVATE_KEY")
    )
    cdn_private_key_file: str = Field("", validation_alias=_env("PHOTOVAULT_CDN_PRIVATE_KEY_FILE"))

    @model_validator(mode="after")
    def _all_or_none(self) -> CdnSettings:
        given = {
            "PHOTOVAULT_CDN_BASE_URL": bool(self.cdn_base_url),
            "PHOTOVAULT_CDN_KEY_PAIR_ID": bool(self.cdn_key_pair_id),
            "PHOTOVAULT_CDN_PRIVATE_KEY or PHOTOVAULT_CDN_PRIVATE_KEY_FILE": bool(
                self.cdn_private_key or self.cdn_private_key_file
            ),
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, ok in given.items() if not ok)
            raise ValueError(f"the CDN needs {missing} too")
        if self.cdn_private_key and self.cdn_private_key_file:
            raise ValueError(
                "set one of PHOTOVAULT_CDN_PRIVATE_KEY or PHOTOVAULT_CDN_PRIVATE_KEY_FILE"
            )
        if self.cdn_base_url and not self.cdn_base_url.startswith("https://"):
            raise ValueError("PHOTOVAULT_CDN_BASE_URL must be an https:// URL")
        return self

    @property
    def cdn_enabled(self) -> bool:
        return bool(self.cdn_base_url)


class AdmissionSettings(_Section):
    """Load shedding and fairness, checked by the call pipeline before any handler runs:
    a cap on the calls in progress per process, and a per-user rate in Redis."""

    # Calls in progress in this process (every transport together) beyond which new ones are
    # shed with UNAVAILABLE; 0: no cap.
    max_concurrent_calls: int = Field(
        256, ge=0, validation_alias=_env("PHOTOVAULT_MAX_CONCURRENT_CALLS")
    )
    # Calls per second per user, over every process (a bucket in Redis); 0: off.
    rate_limit_per_second: float = Field(
        0.0, ge=0, validation_alias=_env("PHOTOVAULT_RATE_LIMIT_PER_SECOND")
    )
    # Calls a user may make at once after being idle; 0: one second's worth of the rate.
    rate_limit_burst: int = Field(0, ge=0, validation_alias=_env("PHOTOVAULT_RATE_LIMIT_BURST"))

    @property
    def effective_rate_limit_burst(self) -> int:
        return self.rate_limit_burst or max(1, math.ceil(self.rate_limit_per_second))


class TracingSettings(_Section):
    """OpenTelemetry: on when an OTLP endpoint is set (the standard variables; the exporter
    reads the rest of OTEL_EXPORTER_OTLP_* itself)."""

    otel_exporter_otlp_endpoint: str = Field(
        "",
        validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    otel_service_name: str = Field("photovault", validation_alias=_env("OTEL_SERVICE_NAME"))


class ProcessingSettings(_Section):
    """The background worker's image variants and decoding limits."""

    variants: str = Field("thumb:320,preview:1600", validation_alias=_env("PHOTOVAULT_VARIANTS"))
    variant_format: str = Field("image/webp", validation_alias=_env("PHOTOVAULT_VARIANT_FORMAT"))
    max_image_pixels: int = Field(
        100_000_000, ge=1, le=2_000_000_000, validation_alias=_env("PHOTOVAULT_MAX_IMAGE_PIXELS")
    )

    @field_validator("variants")
    @classmethod
    def _parse_variants(cls, value: str) -> str:
        parse_variants(value)
        return value

    @field_validator("variant_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in VARIANT_CONTENT_TYPES:
            raise ValueError(f"must be one of {', '.join(VARIANT_CONTENT_TYPES)}")
        return value

    def variant_specs(self) -> tuple[VariantSpec, ...]:
        return parse_variants(self.variants)


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


class LogSettings(_Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("PHOTOVAULT_LOG_LEVEL")
    )
    log_format: Literal["json", "console"] = Field(
        "json", validation_alias=_env("PHOTOVAULT_LOG_FORMAT")
    )


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
        return replace(config, variant_names=tuple(s.name for s in self.variant_specs()))


def variables(section: type[BaseSettings] = Settings) -> list[str]:
    """Every environment variable a section reads, as the operator sets it."""
    names: list[str] = []
    for field in section.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        names += [str(choice) for choice in alias.choices]
    return names


class SettingsError(Exception):
    """Raised with one line per bad variable, named as the operator sets it."""


S = TypeVar("S", bound=BaseSettings)


def load_section(section: type[S], **overrides: object) -> S:
    """One section (or `Settings`, every one) from the environment; `overrides` are variables
    by name, as in the environment."""
    try:
        return section(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]) or "settings"
            lines.append(f"  {name}: {error['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None


def load_settings(**overrides: object) -> Settings:
    return load_section(Settings, **overrides)
