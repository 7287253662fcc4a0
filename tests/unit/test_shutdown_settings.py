"""The shutdown timings are bounded, and a value out of bounds names its variable."""

from __future__ import annotations

import pytest

from photovault_server.settings import SettingsError, load_settings

BASE = {
    "PHOTOVAULT_BUCKET": "photos",
    "PHOTOVAULT_JWT_SECRET": "s" * 32,
}


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", "0", 0.0),
        ("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", "60", 60.0),
        ("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", "60.5", None),
        ("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", "-1", None),
        ("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", "soon", None),
        ("PHOTOVAULT_SHUTDOWN_GRACE_SECONDS", "300", 300.0),
        ("PHOTOVAULT_SHUTDOWN_GRACE_SECONDS", "301", None),
        ("PHOTOVAULT_SHUTDOWN_GRACE_SECONDS", "-0.1", None),
    ],
)
def test_shutdown_timings_are_bounded(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, accepted: float | None
) -> None:
    for name, given in {**BASE, variable: value}.items():
        monkeypatch.setenv(name, given)
    if accepted is None:
        with pytest.raises(SettingsError, match=variable):
            load_settings()
        return
    settings = load_settings()
    field = variable.removeprefix("PHOTOVAULT_").lower()
    assert getattr(settings, field) == accepted


def test_the_defaults_leave_a_lame_duck_second_then_ten_seconds_of_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS", "PHOTOVAULT_SHUTDOWN_GRACE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, given in BASE.items():
        monkeypatch.setenv(name, given)
    settings = load_settings()
    assert (settings.shutdown_lame_duck_seconds, settings.shutdown_grace_seconds) == (1.0, 10.0)


@pytest.mark.parametrize("value", [":9464", "9464", "127.0.0.1:", "127.0.0.1:http"])
def test_metrics_address_needs_an_explicit_host(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """ ":9464" would listen on every interface: the host must be named, loopback by default."""
    for name, given in {**BASE, "PHOTOVAULT_METRICS_ADDR": value}.items():
        monkeypatch.setenv(name, given)
    with pytest.raises(SettingsError, match="PHOTOVAULT_METRICS_ADDR"):
        load_settings()


def test_metrics_listen_on_loopback_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, given in BASE.items():
        monkeypatch.setenv(name, given)
    monkeypatch.delenv("PHOTOVAULT_METRICS_ADDR", raising=False)
    assert load_settings().metrics_addr == "127.0.0.1:9464"
    monkeypatch.setenv("PHOTOVAULT_METRICS_ADDR", "0.0.0.0:9464")
    assert load_settings().metrics_addr == "0.0.0.0:9464"
