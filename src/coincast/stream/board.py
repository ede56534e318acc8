"""Live indicators per (symbol, interval), updated incrementally on every closed candle."""

from __future__ import annotations

from collections.abc import Sequence

from coincast.domain import Candle, Interval
from coincast.stream.candles import CandleUpdate
from coincast.stream.indicators import LiveIndicators


class IndicatorBoard:
    """A :class:`~coincast.stream.processor.CandleSink` holding a :class:`LiveIndicators` per series.

    Closed candles advance the state (O(1) each); the in-progress candle is kept so :meth:`values`
    can give provisional values for it on request without touching the state.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, Interval], LiveIndicators] = {}
        self._open: dict[tuple[str, Interval], Candle] = {}
        self._last_closed: dict[tuple[str, Interval], int] = {}

    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        for u in updates:
            c = u.candle
            key = (c.symbol, c.interval)
            if c.closed:
                self._close(key, c)
            else:
                self._open[key] = c

    def seed(self, closed: Sequence[Candle]) -> None:
        """Warm up from stored candles (oldest first) so values are ready at start-up."""
        for c in closed:
            self._close((c.symbol, c.interval), c)

    def _close(self, key: tuple[str, Interval], c: Candle) -> None:
        if c.open_ms <= self._last_closed.get(key, -1):
            return  # a replayed candle: the state already has it
        ind = self._series.get(key)
        if ind is None:
            ind = self._series[key] = LiveIndicators(c.symbol, c.interval)
        ind.update(c)
        self._last_closed[key] = c.open_ms
        if (o := self._open.get(key)) is not None and o.open_ms <= c.open_ms:
            del self._open[key]

    def values(self, symbol: str, interval: Interval) -> dict[str, object]:
        """Values after the last closed candle, and provisional ones including the candle in progress."""
        key = (symbol, interval)
        ind = self._series.get(key)
        if ind is None:
            return {"as_of": None, "ready": False, "closed": {}, "provisional": None}
        o = self._open.get(key)
        return {
            "as_of": self._last_closed[key],
            "ready": ind.ready,
            "closed": ind.values,
            "provisional": ind.update(o) if o is not None else None,  # an open candle leaves the state as is
        }
