"""Errors grouped by what the caller does about them."""

from __future__ import annotations


class CoincastError(Exception):
    """Something coincast reports on purpose."""


class ConfigError(CoincastError):
    """The user must change settings: the CLI exits 2 with one line, no traceback."""


class InvalidRequest(CoincastError):
    """A bad symbol, interval, date or payload in a request: the API answers 404 / 422."""

    status_code = 422
    code = "invalid_request"


class UnknownSymbol(InvalidRequest):
    status_code = 404
    code = "unknown_symbol"


class InvalidInterval(InvalidRequest):
    code = "invalid_interval"


class InvalidTimeRange(InvalidRequest):
    code = "invalid_time_range"


class TransientError(CoincastError):
    """Network, broker, HTTP 429/418: retry with backoff and jitter."""


class MalformedMessage(CoincastError):
    """One bad payload: count it, dead-letter it, carry on."""

    def __init__(self, reason: str, raw: bytes | str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
