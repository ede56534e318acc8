"""Candle intervals as Binance writes them, with exact millisecond arithmetic."""

from __future__ import annotations

from enum import StrEnum

from coincast.domain.errors import InvalidInterval

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


class Interval(StrEnum):
    S1 = "1s"
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"

    @property
    def ms(self) -> int:
        """Length of the interval in milliseconds."""
        return int(self.value[:-1]) * _UNIT_MS[self.value[-1]]

    def floor(self, ts_ms: int) -> int:
        """Open time (ms) of the interval containing ``ts_ms``; epoch-aligned like Binance (UTC days)."""
        return ts_ms - ts_ms % self.ms

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse ``'1m'`` etc.

        Raises:
            InvalidInterval: naming the value and the accepted ones.
        """
        try:
            return cls(text.strip())
        except ValueError:
            known = ", ".join(i.value for i in cls)
            raise InvalidInterval(f"unknown interval {text!r}; expected one of {known}") from None
