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
from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from photovault_server.adapters.s3_endpoints import environment_credentials
from photovault_server.adapters.sigv4 import Credentials
from photovault_server.auth import AuthConfig
from photovault_server.core import ServiceConfig, UrlPolicy, default_cache_margin
from photovault_server.core.image_formats import DEFAULT_ALLOWED_TYPES, FORMATS

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
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, frozen=True)


class ServerSettings(_Section):
    """`photovault serve`'s listeners and shutdown, and the gateway's CORS origins."""

    grpc_addr: str = Field("127.0.0.1:50051", validation_alias=_env("PHOTOVAULT_GRPC_ADDR"))
    http_addr: str = Field("127.0.0.1:8080", validation_alias=_env("PHOTOVAULT_HTTP_ADDR"))
    # Prometheus /metrics of `photovault serve`; empty to switch it off.
    metrics_addr: str = Field("127.0.0.1:9464", validation_alias=_env("PHOTOVAULT_METRICS_ADDR"))
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

    _split_origins = field_validator("cors_origins", mode="before")(
        classmethod(lambda cls, v: _split(v))
    )


class DatabaseSettings(_Section):
    """Postgres: the asyncpg pool."""

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/photovault", validation_alias=_env("DATABASE_URL")
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
            upload_url_ttl=timedelta(seconds=self.upload_url_ttl_seconds),
            confirm_window=timedelta(seconds=self.confirm_window_seconds),
            max_multipart_upload_bytes=self.max_multipart_upload_bytes,
            multipart_upload_ttl=timedelta(seconds=self.multipart_upload_ttl_seconds),
        )


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
    LogSettings,
):
    """Every section: what a running service (serve, Lambda, sweep) needs. Being each section,
    it is passed wherever one section is expected."""


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
