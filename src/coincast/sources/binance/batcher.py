"""Pure helpers of the live source: trade rows -> column batches, and the kline cross-check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from coincast.domain import Candle, TradeBatch
from coincast.sources.binance.wire import TradeRow


@dataclass(slots=True)
class _Columns:
    ids: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    qtys: list[float] = field(default_factory=list)
    makers: list[bool] = field(default_factory=list)


class TradeBuffer:
    """Parsed trades per symbol as growing column lists, drained into one batch per symbol.

    A burst of frames becomes one :class:`TradeBatch` per symbol: numpy arrays are built once per
    drain, never per trade.
    """

    def __init__(self) -> None:
        self._cols: dict[str, _Columns] = {}
        self._since = 0.0

    def __bool__(self) -> bool:
        return bool(self._cols)

    def age_s(self) -> float:
        """Seconds since the oldest buffered trade was added (0 when empty); monotonic clock."""
        return time.monotonic() - self._since if self._cols else 0.0

    def add(self, t: TradeRow) -> int:
        """Append one trade; returns how many this symbol now has buffered."""
        if not self._cols:
            self._since = time.monotonic()
        c = self._cols.get(t.symbol)
        if c is None:
            c = self._cols[t.symbol] = _Columns()
        c.ids.append(t.trade_id)
        c.times.append(t.event_ms)
        c.prices.append(t.price)
        c.qtys.append(t.qty)
        c.makers.append(t.is_buyer_maker)
        return len(c.ids)

    def drain(self, recv_ms: int) -> list[TradeBatch]:
        cols, self._cols = self._cols, {}
        return [
            TradeBatch(
                symbol,
                np.array(c.ids, np.int64),
                np.array(c.times, np.int64),
                np.array(c.prices, np.float64),
                np.array(c.qtys, np.float64),
                np.array(c.makers, np.bool_),
                recv_ms,
            )
            for symbol, c in cols.items()
        ]


class KlineCrossCheck:
    """Compares Binance's closed 1m klines with the volume of the trades delivered for them.

    Candles are built from trades; the kline stream only tells whether the two agree. A
    mismatch is counted, never corrected (a kline can close before a repaired gap is refilled).
    """

    def __init__(self) -> None:
        self._volume: dict[tuple[str, int], float] = {}
        self.mismatches = 0
        self.checked = 0

    def record(self, batch: TradeBatch) -> None:
        minutes = batch.event_ms // 60_000
        for minute in np.unique(minutes):
            key = (batch.symbol, int(minute))
            self._volume[key] = self._volume.get(key, 0.0) + float(batch.qty[minutes == minute].sum())
        if len(self._volume) > 4096:  # no kline stream to consume them: keep the last hour only
            newest = max(m for _, m in self._volume)
            self._volume = {k: v for k, v in self._volume.items() if k[1] > newest - 60}

    def check(self, kline: Candle) -> bool | None:
        """True/False for a closed 1m kline (agree or not), None for others."""
        if not kline.closed or kline.interval.ms != 60_000:
            return None
        minute = kline.open_ms // 60_000
        ours = self._volume.pop((kline.symbol, minute), 0.0)
        for key in [k for k in self._volume if k[0] == kline.symbol and k[1] < minute]:
            del self._volume[key]
        self.checked += 1
        ok = abs(ours - kline.volume) <= 1e-9 * max(1.0, kline.volume)
        if not ok:
            self.mismatches += 1
        return ok
