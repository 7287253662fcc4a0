"""How a variable's text becomes a value: the rules pydantic-settings applied, kept when settings
moved to msgspec (issue 18), and what an operator sees when a value is wrong."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from photovault_server.settings import (
    DatabaseSettings,
    S3Settings,
    Settings,
    SettingsError,
    default,
    load_section,
    load_settings,
    variables,
)

BASE = {"PHOTOVAULT_BUCKET": "photos", "PHOTOVAULT_JWT_SECRET": "s" * 32}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets (lower-case spellings too: names match in any case)."""
    for name in variables(Settings):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _load(**variables: object) -> Settings:
    return load_settings(**{**BASE, **variables})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *((word, True) for word in ("true", "True", "TRUE", "1", "yes", "on", "t", "y", "YES")),
        *((word, False) for word in ("false", "False", "0", "no", "off", "f", "n", "OFF")),
    ],
)
def test_a_boolean_is_any_of_the_usual_words(text: str, value: bool) -> None:
    assert _load(PHOTOVAULT_GRPC_REFLECTION=text).grpc_reflection is value


@pytest.mark.parametrize("text", ["", "2", "maybe", " true", "enabled"])
def test_any_other_word_is_not_a_boolean(text: str) -> None:
    with pytest.raises(SettingsError, match="PHOTOVAULT_GRPC_REFLECTION: must be true or false"):
        _load(PHOTOVAULT_GRPC_REFLECTION=text)


@pytest.mark.parametrize(
    ("text", "value"), [("60", 60), (" 60 ", 60), ("+60", 60), ("1_000", 1000), ("60.0", 60)]
)
def test_an_integer_is_written_as_in_python(text: str, value: int) -> None:
    assert _load(PHOTOVAULT_DB_POOL_MAX_SIZE=text).db_pool_max_size == value


@pytest.mark.parametrize("text", ["", "ten", "60.5", "1e3", "0x10", "1__0"])
def test_anything_else_is_not_an_integer(text: str) -> None:
    with pytest.raises(SettingsError, match="PHOTOVAULT_DB_POOL_MAX_SIZE: must be an integer"):
        _load(PHOTOVAULT_DB_POOL_MAX_SIZE=text)


@pytest.mark.parametrize(("text", "value"), [("2.5", 2.5), (" 3 ", 3.0), ("1e1", 10.0)])
def test_a_number_may_have_a_fraction_and_an_exponent(text: str, value: float) -> None:
    assert _load(PHOTOVAULT_RATE_LIMIT_PER_SECOND=text).rate_limit_per_second == value


@pytest.mark.parametrize("text", ["", "fast", "1,5"])
def test_garbage_is_not_a_number(text: str) -> None:
    with pytest.raises(SettingsError, match="PHOTOVAULT_RATE_LIMIT_PER_SECOND: must be a number"):
        _load(PHOTOVAULT_RATE_LIMIT_PER_SECOND=text)


def test_bounds_name_the_variable_and_the_limit() -> None:
    with pytest.raises(SettingsError, match=r"PHOTOVAULT_REDIS_TIMEOUT_MS: .*<= 5000"):
        _load(PHOTOVAULT_REDIS_TIMEOUT_MS="5001")
    with pytest.raises(SettingsError, match=r"PHOTOVAULT_DB_COMMAND_TIMEOUT_SECONDS: .*> ?0"):
        _load(PHOTOVAULT_DB_COMMAND_TIMEOUT_SECONDS="0")
    with pytest.raises(SettingsError, match=r"PHOTOVAULT_BUCKET: .*length >= 3"):
        _load(PHOTOVAULT_BUCKET="ab")


def test_a_choice_names_the_choices() -> None:
    with pytest.raises(
        SettingsError, match="PHOTOVAULT_REDIS_MODE: must be one of standalone, cluster"
    ):
        _load(PHOTOVAULT_REDIS_MODE="sentinel")


def test_an_empty_value_is_a_value() -> None:
    """Set but empty: an empty text, an empty list; never the default."""
    settings = _load(PHOTOVAULT_METRICS_ADDR="", PHOTOVAULT_CORS_ORIGINS="")
    assert (settings.metrics_addr, settings.cors_origins) == ("", [])
    with pytest.raises(SettingsError, match="PHOTOVAULT_ALLOWED_CONTENT_TYPES: must list at least"):
        _load(PHOTOVAULT_ALLOWED_CONTENT_TYPES="")
    with pytest.raises(SettingsError, match="PHOTOVAULT_CACHE_MARGIN_SECONDS: must be an integer"):
        _load(PHOTOVAULT_CACHE_MARGIN_SECONDS="")


def test_lists_are_comma_separated_and_blanks_dropped() -> None:
    settings = _load(PHOTOVAULT_CORS_ORIGINS=" https://a.example , ,https://b.example,")
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert _load(PHOTOVAULT_CORS_ORIGINS=["https://c.example"]).cors_origins == [
        "https://c.example"
    ]


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOVAULT_JWT_SECRET", "s" * 32)
    with pytest.raises(SettingsError) as raised:
        load_settings(PHOTOVAULT_URL_TTL_SECONDS="soon", PHOTOVAULT_LOG_LEVEL="LOUD")
    message = str(raised.value)
    assert message.startswith("invalid configuration:\n")
    for name in (
        "PHOTOVAULT_BUCKET: required",
        "PHOTOVAULT_URL_TTL_SECONDS",
        "PHOTOVAULT_LOG_LEVEL",
    ):
        assert f"  {name}" in message


def test_rules_across_variables_are_each_reported() -> None:
    with pytest.raises(SettingsError) as raised:
        _load(
            PHOTOVAULT_DB_POOL_MIN_SIZE="5",
            PHOTOVAULT_DB_POOL_MAX_SIZE="2",
            PHOTOVAULT_CDN_BASE_URL="https://cdn.example",
        )
    message = str(raised.value)
    assert "PHOTOVAULT_DB_POOL_MIN_SIZE must not exceed the max size" in message
    assert "the CDN needs PHOTOVAULT_CDN_KEY_PAIR_ID" in message


def test_names_match_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("photovault_bucket", "lower-case")
    assert load_settings(PHOTOVAULT_JWT_SECRET="s" * 32).bucket == "lower-case"
    assert _load(photovault_redis_timeout_ms="70").redis_timeout_ms == 70


def test_the_first_name_set_wins_and_overrides_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert _load().aws_region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    assert _load().aws_region == "eu-west-2"
    assert _load(AWS_DEFAULT_REGION="eu-west-3").aws_region == "eu-west-3"


def test_overrides_may_be_values_and_unknown_names_are_ignored() -> None:
    settings = _load(PHOTOVAULT_DB_POOL_MAX_SIZE=20, PHOTOVAULT_SHUTDOWN_GRACE_SECONDS=1, OTHER="x")
    assert (settings.db_pool_max_size, settings.shutdown_grace_seconds) == (20, 1.0)
    assert isinstance(settings.shutdown_grace_seconds, float)


def test_a_section_loads_alone() -> None:
    """`photovault migrate`: the database section needs neither bucket nor key."""
    database = load_section(DatabaseSettings, DATABASE_MIGRATION_URL="postgresql://direct/db")
    assert database.migration_url == "postgresql://direct/db"
    with pytest.raises(SettingsError, match="PHOTOVAULT_BUCKET"):
        load_section(S3Settings)


def test_settings_are_frozen_hide_secrets_and_survive_pickling() -> None:
    """Pickled: `serve --workers` hands them to spawned processes."""
    settings = _load(AWS_SECRET_ACCESS_KEY="hidden-key")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.bucket = "other"  # type: ignore[misc]
    assert "hidden-key" not in repr(settings)
    assert "s" * 32 not in repr(settings)
    copy = pickle.loads(pickle.dumps(settings))  # noqa: S301 (our own bytes)
    assert (copy.bucket, copy.aws_secret_access_key) == ("photos", "hidden-key")
    changed = dataclasses.replace(settings, db_pool_max_size=3)
    assert (changed.db_pool_max_size, settings.db_pool_max_size) == (3, 10)


def test_defaults_are_known_by_variable() -> None:
    assert default(Settings, "REDIS_URL") == "redis://127.0.0.1:6379/0"
    assert default(Settings, "PHOTOVAULT_ALLOWED_CONTENT_TYPES") == _load().allowed_content_types
    with pytest.raises(KeyError):
        default(Settings, "PHOTOVAULT_NOTHING")
