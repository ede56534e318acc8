"""Market values: trades travel in columnar batches, candles as frozen records.

Trades move through the bus as :class:`TradeBatch` (numpy columns, one symbol per batch) so the
hot path never builds a Python object per trade. Candles are few (one per interval per symbol per
batch at most) and travel as :class:`Candle` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import numpy.typing as npt

from coincast.domain.interval import Interval

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade as an exchange reports it (edges only: parsers and tests).

    ``is_buyer_maker`` follows Binance: True means the taker sold.
    """

    symbol: str
    trade_id: int
    event_ms: int
    price: float
    qty: float
    is_buyer_maker: bool


@dataclass(frozen=True, slots=True, eq=False)
class TradeBatch:
    """Trades of one symbol as parallel numpy arrays (the bus's unit of work).

    Invariants: all arrays have the same length; ``event_ms`` is exchange time in ms.
    Order is the order of arrival, not necessarily time order (late trades exist).

    ``watermark_ms`` (0 = not stated) is the producer's promise that every trade of this symbol
    with an earlier event time was published no later than this batch. A broker keeps a symbol's
    batches in order, so a consumer may close that symbol's candles up to it. An empty batch
    carrying only a watermark is a heartbeat for a quiet symbol.
    """

    symbol: str
    trade_id: I64
    event_ms: I64
    price: F64
    qty: F64
    is_buyer_maker: Bool
    recv_ms: int = 0
    watermark_ms: int = 0

    def __len__(self) -> int:
        return int(self.trade_id.shape[0])

    @classmethod
    def from_trades(cls, trades: list[Trade], recv_ms: int = 0) -> Self:
        """Build a batch from trades of one symbol (tests and slow edges)."""
        if not trades:
            raise ValueError("from_trades needs at least one trade")
        symbol = trades[0].symbol
        if any(t.symbol != symbol for t in trades):
            raise ValueError("a TradeBatch holds one symbol")
        return cls(
            symbol=symbol,
            trade_id=np.fromiter((t.trade_id for t in trades), np.int64, len(trades)),
            event_ms=np.fromiter((t.event_ms for t in trades), np.int64, len(trades)),
            price=np.fromiter((t.price for t in trades), np.float64, len(trades)),
            qty=np.fromiter((t.qty for t in trades), np.float64, len(trades)),
            is_buyer_maker=np.fromiter((t.is_buyer_maker for t in trades), np.bool_, len(trades)),
            recv_ms=recv_ms,
        )

    def to_trades(self) -> list[Trade]:
        """Expand into :class:`Trade` values (tests and slow edges only)."""
        return [
            Trade(self.symbol, int(i), int(t), float(p), float(q), bool(m))
            for i, t, p, q, m in zip(
                self.trade_id, self.event_ms, self.price, self.qty, self.is_buyer_maker, strict=True
            )
        ]

    def take(self, mask_or_index: npt.NDArray[np.bool_] | I64) -> TradeBatch:
        """A new batch with the selected rows."""
        return TradeBatch(
            self.symbol,
            self.trade_id[mask_or_index],
            self.event_ms[mask_or_index],
            self.price[mask_or_index],
            self.qty[mask_or_index],
            self.is_buyer_maker[mask_or_index],
            self.recv_ms,
            self.watermark_ms,
        )

    @classmethod
    def heartbeat(cls, symbol: str, watermark_ms: int, recv_ms: int = 0) -> TradeBatch:
        """An empty batch that only moves ``symbol``'s watermark."""
        empty_i = np.empty(0, np.int64)
        return cls(symbol, empty_i, empty_i.copy(), np.empty(0, np.float64), np.empty(0, np.float64),
                   np.empty(0, np.bool_), recv_ms, watermark_ms)


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle, Binance style: ``open_ms`` inclusive, ``close_ms = open_ms + len - 1``.

    ``taker_buy_volume`` is base volume bought by takers (trades with ``is_buyer_maker`` False).
    ``closed`` is False while the interval (plus grace) has not elapsed.
    """

    symbol: str
    interval: Interval
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote_volume: float
    closed: bool = True

    @property
    def close_ms(self) -> int:
        return self.open_ms + self.interval.ms - 1

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly view used by the API and the WebSocket."""
        return {
            "symbol": self.symbol,
            "interval": self.interval.value,
            "open_time": self.open_ms,
            "close_time": self.close_ms,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "quote_volume": self.quote_volume,
            "trades": self.trades,
            "taker_buy_volume": self.taker_buy_volume,
            "taker_buy_quote_volume": self.taker_buy_quote_volume,
            "closed": self.closed,
        }


@dataclass(frozen=True, slots=True)
class FoldState:
    """What the candle fold needs to continue after a restart exactly where it stopped.

    ``open_candles`` are the candles in progress (``closed`` False); ``max_trade_ids`` and
    ``watermarks_ms`` are per symbol: the highest trade id folded and the event time up to which
    every trade was folded.
    """

    open_candles: tuple[Candle, ...]
    max_trade_ids: dict[str, int]
    watermarks_ms: dict[str, int]


@dataclass(slots=True)
class DeadLetter:
    """A message set aside: what it was, why, and where it came from."""

    source: str
    reason: str
    raw: str
    recv_ms: int
    extra: dict[str, str] = field(default_factory=dict)
