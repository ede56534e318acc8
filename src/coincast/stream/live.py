"""The live view: the newest candle per (symbol, interval) and rolling 24-hour tickers."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from coincast.domain import Candle, Interval
from coincast.stream.candles import CandleUpdate

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    price: float
    open_24h: float
    high_24h: float
    low_24h: float
    volume_24h: float
    time_ms: int

    @property
    def change_24h_pct(self) -> float:
        return (self.price / self.open_24h - 1.0) * 100.0 if self.open_24h else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "price": self.price, "open_24h": self.open_24h,
            "change_24h_pct": round(self.change_24h_pct, 4), "high_24h": self.high_24h,
            "low_24h": self.low_24h, "volume_24h": self.volume_24h, "time": self.time_ms,
        }


class LiveState:
    """A :class:`~coincast.stream.processor.CandleSink` keeping what the dashboard shows first.

    Tickers come from the smallest interval's candles of the last 24 hours (in memory: 1,440
    one-minute candles per symbol).
    """

    RECENT = 32  # candles per (symbol, interval) kept until the store surely has them

    def __init__(self, base: Interval) -> None:
        self.base = base
        self._latest: dict[tuple[str, Interval], Candle] = {}
        self._recent: dict[tuple[str, Interval], dict[int, Candle]] = {}
        self._day: dict[str, deque[Candle]] = {}

    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        for u in updates:
            c = u.candle
            key = (c.symbol, c.interval)
            prev = self._latest.get(key)
            if prev is None or c.open_ms >= prev.open_ms:
                self._latest[key] = c
            recent = self._recent.setdefault(key, {})
            if not (c.open_ms in recent and recent[c.open_ms].closed and not c.closed):
                recent[c.open_ms] = c
            if len(recent) > self.RECENT:
                del recent[min(recent)]
            if c.closed and c.interval == self.base:
                self._push_day(c)

    def recent(self, symbol: str, interval: Interval) -> list[Candle]:
        """The newest candles seen on the stream, in progress or closed, oldest first.

        They cover what the store may not have yet: candles still in their grace period and
        closed ones waiting for the next flush.
        """
        recent = self._recent.get((symbol, interval), {})
        return [recent[k] for k in sorted(recent)]

    def seed(self, closed: Sequence[Candle]) -> None:
        """Warm the tickers from stored base-interval candles (oldest first) at start-up."""
        for c in closed:
            if c.interval == self.base:
                self._push_day(c)
                key = (c.symbol, c.interval)
                if key not in self._latest or c.open_ms >= self._latest[key].open_ms:
                    self._latest[key] = c

    def _push_day(self, c: Candle) -> None:
        day = self._day.setdefault(c.symbol, deque(maxlen=DAY_MS // self.base.ms))
        if day and c.open_ms <= day[-1].open_ms:
            return
        day.append(c)

    def latest(self, symbol: str, interval: Interval) -> Candle | None:
        return self._latest.get((symbol, interval))

    def ticker(self, symbol: str) -> Ticker | None:
        now = self._latest.get((symbol, self.base))
        day = self._day.get(symbol)
        if now is None:
            return None
        window = [c for c in (day or ()) if c.open_ms > now.open_ms - DAY_MS and c.open_ms != now.open_ms]
        window.append(now)
        first = window[0]
        return Ticker(
            symbol, now.close, first.open, max(c.high for c in window), min(c.low for c in window),
            sum(c.volume for c in window), now.close_ms,
        )

    def tickers(self, symbols: Sequence[str]) -> list[Ticker]:
        return [t for s in symbols if (t := self.ticker(s)) is not None]
