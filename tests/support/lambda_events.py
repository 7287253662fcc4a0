"""Lambda events for the handler, built from the recorded ones in tests/events/."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .users import User

EVENTS = Path(__file__).resolve().parents[1] / "events"
ORIGIN = "https://gallery.example.com"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def connect_event(
    rpc: str, body: dict[str, Any], user: User | None, template: str = "function_url"
) -> dict[str, Any]:
    event = copy.deepcopy(load(template))
    path = f"/photovault.v1.PhotoService/{rpc}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["body"] = json.dumps(body)
    event["headers"].pop("authorization", None)
    if user is not None:
        event["headers"]["authorization"] = f"Bearer {user.token}"
    return event
