"""Log lines: readable text on a terminal, JSON when piped, never terminal escape codes in either."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from coincast.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def uvicorn_style_record() -> None:
    """uvicorn logs a plain message plus a coloured copy of it in ``color_message``."""
    logging.getLogger("coincast.test.uvicorn_like").info(
        "Started server process [%d]", 42, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )
    logging.getLogger("coincast.test").warning("odd \x1b[31mred\x1b[0m text", extra={"what": "\x1b[1mbold\x1b[0m"})


@pytest.mark.usefixtures("restore_logging")
def test_piped_lines_are_json_without_escape_codes(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    uvicorn_style_record()
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["Started server process [42]", "odd red text"]
    assert "color_message" not in records[0] and records[1]["what"] == "bold"
    assert not any("\x1b" in line or "\\u001b" in line for line in lines), lines


@pytest.mark.usefixtures("restore_logging")
def test_terminal_lines_are_readable_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=False)
    uvicorn_style_record()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "Started server process [42]" in lines[0] and "what=bold" in lines[1]
    assert not any(line.startswith("{") or "\x1b" in line for line in lines), lines
