"""Small builders for tests: trades, batches and candles with sensible defaults."""

from __future__ import annotations

from coincast.domain import Candle, Interval, Trade, TradeBatch

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # a UTC midnight (2023-11-14)


def make_trade(
    trade_id: int,
    event_ms: int,
    price: float = 100.0,
    qty: float = 1.0,
    *,
    symbol: str = "BTCUSDT",
    buyer_maker: bool = False,
) -> Trade:
    return Trade(symbol, trade_id, event_ms, price, qty, buyer_maker)


def make_batch(*trades: Trade) -> TradeBatch:
    return TradeBatch.from_trades(list(trades))


def make_candles(symbol: str, interval: Interval, n: int, start: int = T0) -> list[Candle]:
    """``n`` closed candles from ``start``, each field a simple function of its index."""
    return [Candle(symbol, interval, start + i * interval.ms, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 1.0 + i,
                   10.0 * (i + 1), i + 1, 0.5, 5.0) for i in range(n)]
