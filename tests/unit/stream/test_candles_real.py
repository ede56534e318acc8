"""The streaming fold reproduces, exactly, the candles of the real BTCUSDT trades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from coincast.domain import Interval, TradeBatch
from coincast.stream.batch import trades_to_candles
from coincast.stream.candles import CandleAggregator

INTERVALS = (Interval.S1, Interval.M1)


def real_trades(shared_data: Path) -> pl.DataFrame:
    return pl.read_parquet(shared_data / "trades_btcusdt.parquet").select(
        pl.lit("BTCUSDT").alias("symbol"), "trade_id", pl.col("time").dt.epoch("ms").alias("event_ms"),
        "price", "qty", "is_buyer_maker",
    )


@pytest.mark.parametrize("batch", [1, 7, 250, 5000])
def test_stream_equals_batch_on_real_trades(shared_data: Path, batch: int) -> None:
    df = real_trades(shared_data)
    ref = trades_to_candles(df, INTERVALS)
    cols = {c: df[c].to_numpy() for c in ("trade_id", "event_ms", "price", "qty", "is_buyer_maker")}
    agg = CandleAggregator(INTERVALS, grace_ms=0)
    out = []
    for i in range(0, df.height, batch):
        b = TradeBatch("BTCUSDT", *(cols[c][i:i + batch] for c in cols))  # type: ignore[arg-type]
        agg.add(b)
        out.extend(agg.advance(int(b.event_ms[-1])))
    out.extend(agg.flush())
    for iv in INTERVALS:
        got = pl.DataFrame([u.candle.as_dict() for u in out if u.candle.interval == iv and u.candle.trades])
        want = ref[iv]
        assert got["open_time"].to_list() == want["open_time"].to_list()
        for col in ("open", "high", "low", "close", "trades"):
            assert got[col].to_list() == want[col].to_list(), col
        for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
            np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12)
    # one minute of real BTCUSDT: 2,001 trades, all counted once
    assert sum(u.candle.trades for u in out if u.candle.interval == Interval.M1) == df.height
    quiet = [u.candle for u in out if u.candle.interval == Interval.S1 and u.candle.trades == 0]
    assert all(c.volume == 0 and c.open == c.close for c in quiet)
