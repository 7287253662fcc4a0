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
