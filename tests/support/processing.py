"""Photo processing run in the test process: what `photovault worker` does, on the session
app's own repository and store, so a test can turn its confirmed photos READY."""

from __future__ import annotations

from photovault_server.app import App
from photovault_server.core.processing import JobOutcome
from photovault_server.worker import build_processing

# Due jobs claimed per round; the session database holds other tests' jobs too.
ROUND = 20


async def process_due_photos(app: App) -> list[JobOutcome]:
    """Runs every due photo job (the worker's processing, in process) until none is due."""
    processing = build_processing(app)
    outcomes: list[JobOutcome] = []
    while batch := await processing.run_due(limit=ROUND):
        outcomes.extend(batch)
    return outcomes
