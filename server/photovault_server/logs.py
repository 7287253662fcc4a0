"""Structured logs (structlog): JSON lines by default, one event per line, request-scoped fields
from contextvars."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write per line (PrintLogger writes the newline apart): the workers of
        # `serve --workers N` share stderr, and their lines must not interleave.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        # Not cached: reconfiguring (tests, a Lambda cold start) must reach module-level loggers.
        cache_logger_on_first_use=False,
    )
