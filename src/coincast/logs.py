"""Structured logs: one JSON object per line on stderr, for coincast and the libraries it runs."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain_text(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No terminal escape codes in a line: uvicorn adds a coloured copy of its message; drop it."""
    event.pop("color_message", None)
    for key, value in event.items():
        if isinstance(value, str) and "\x1b" in value:
            event[key] = _ANSI.sub("", value)
    return event


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Route stdlib logging (uvicorn included) through structlog's formatter.

    ``extra={...}`` fields of a log call become keys of the line. Lines are JSON when stderr is
    not a terminal (services, CI, log shippers) or ``COINCAST_LOG_FORMAT=json``; key=value text
    on a terminal.
    """
    if json is None:
        fmt = os.environ.get("COINCAST_LOG_FORMAT", "")
        json = fmt == "json" or (fmt != "console" and not sys.stderr.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _plain_text,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
