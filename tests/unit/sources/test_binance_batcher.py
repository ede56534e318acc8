"""Column buffering of parsed trades and the kline volume cross-check."""

from __future__ import annotations

import numpy as np

from coincast.domain import Candle, Interval
from coincast.sources.binance.batcher import KlineCrossCheck, TradeBuffer
from coincast.sources.binance.wire import TradeRow

T0 = 1_700_000_040_000  # a minute boundary


def test_buffer_drains_one_batch_per_symbol_in_arrival_order() -> None:
    buf = TradeBuffer()
    assert not buf
    rows = [TradeRow("BTCUSDT", 1, T0, 10.0, 1.0, True), TradeRow("ETHUSDT", 7, T0 + 1, 2.0, 3.0, False),
            TradeRow("BTCUSDT", 2, T0 + 2, 11.0, 0.5, False)]  # fmt: skip
    assert [buf.add(r) for r in rows] == [1, 1, 2]
    batches = {b.symbol: b for b in buf.drain(recv_ms=99)}
    assert not buf and set(batches) == {"BTCUSDT", "ETHUSDT"}
    btc = batches["BTCUSDT"]
    assert btc.trade_id.dtype == np.int64 and btc.trade_id.tolist() == [1, 2] and btc.recv_ms == 99
    assert btc.to_trades()[1].price == 11.0 and not btc.is_buyer_maker[1]


def kline(open_ms: int, volume: float, closed: bool = True) -> Candle:
    return Candle("BTCUSDT", Interval.M1, open_ms, 1, 1, 1, 1, volume, volume, 1, 0, 0, closed)


def test_cross_check_counts_minutes_whose_volume_differs() -> None:
    check = KlineCrossCheck()
    buf = TradeBuffer()
    for i, q in enumerate([1.0, 2.0, 0.25]):
        buf.add(TradeRow("BTCUSDT", i, T0 + i * 30_000, 10.0, q, True))  # minute 0: 3.0, minute 1: 0.25
    for b in buf.drain(0):
        check.record(b)
    assert check.check(kline(T0, 3.0, closed=False)) is None  # still open: not compared
    assert check.check(kline(T0, 3.0)) is True
    assert check.check(kline(T0 + 60_000, 0.5)) is False
    assert check.check(kline(T0 + 120_000, 0.0)) is True  # a quiet minute agrees with no trades
    assert (check.checked, check.mismatches) == (3, 1)


def test_buffer_age_starts_with_the_first_trade() -> None:
    buf = TradeBuffer()
    assert buf.age_s() == 0.0
    buf.add(TradeRow("BTCUSDT", 1, T0, 10.0, 1.0, True))
    first = buf.age_s()
    buf.add(TradeRow("BTCUSDT", 2, T0, 10.0, 1.0, True))
    assert buf.age_s() >= first >= 0.0
    buf.drain(0)
    assert buf.age_s() == 0.0
