"""Incremental (stream) indicators equal the batch registry's values on real hourly data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coincast.domain import Candle, Interval
from coincast.features.bars import Bars
from coincast.features.registry import OUTPUTS, compute_indicators
from coincast.stream.indicators import EMA, RSI, LiveIndicators


def _candles(df: pd.DataFrame, symbol: str) -> list[Candle]:
    ms = df["open_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return [
        Candle(symbol, Interval.H1, int(t), float(o), float(h), float(lo), float(c), float(v), 0.0, 0, 0.0, 0.0)
        for t, o, h, lo, c, v in zip(ms, df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True)
    ]


@pytest.fixture(scope="module", params=["BTCUSDT", "DOGEUSDT"])
def market(request: pytest.FixtureRequest, shared_data: Path) -> tuple[str, pd.DataFrame]:
    sym = request.param
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "==", sym)])
    return sym, df.sort_values("open_time").iloc[:5000].reset_index(drop=True)


def test_live_columns_are_registry_columns() -> None:
    live = LiveIndicators("BTCUSDT", Interval.H1)
    assert set(live.columns) <= set(OUTPUTS)
    assert len(live.columns) == 11


def test_incremental_equals_batch_on_real_data(market: tuple[str, pd.DataFrame]) -> None:
    sym, df = market
    batch = compute_indicators(Bars.from_frame(df))
    live = LiveIndicators(sym, Interval.H1)
    rows = [live.update(c) for c in _candles(df, sym)]
    assert live.ready
    for col in live.columns:
        got = np.array([np.nan if r[col] is None else r[col] for r in rows])
        want = batch[col]
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{col}: warm-up differs from batch"
        ok = ~np.isnan(want)
        scale = np.nanmax(np.abs(want))
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9, atol=1e-10 * scale, err_msg=col)


def test_open_candle_is_provisional_and_duplicates_are_ignored(market: tuple[str, pd.DataFrame]) -> None:
    sym, df = market
    candles = _candles(df.iloc[:200], sym)
    live = LiveIndicators(sym, Interval.H1)
    for c in candles[:-1]:
        live.update(c)
    before = live.values
    forming = dataclasses.replace(candles[-1], closed=False)
    provisional = live.update(forming)
    assert live.values == before, "an open candle changed the state"
    final = live.update(candles[-1])
    assert final == provisional, "the closed candle gives what the open one previewed"
    assert live.update(candles[-1]) == final and live.update(candles[10]) == final, "replay double-counted"
    assert live.values == final


def test_ready_flags_and_wrong_stream() -> None:
    ema, rsi = EMA(3), RSI(3)
    base = Candle("BTCUSDT", Interval.M1, 0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 0.0, 0.0)
    values = []
    for i, close in enumerate([1.0, 2.0, 3.0, 4.0]):
        c = dataclasses.replace(base, open_ms=i * 60_000, close=close, high=close, low=close)
        values.append(ema.update(c))
        rsi.update(c)
    assert values[:2] == [None, None] and values[2] == pytest.approx(2.0) and values[3] == pytest.approx(3.0)
    assert ema.ready and rsi.ready and rsi.values["rsi_3"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="ETHUSDT"):
        LiveIndicators("ETHUSDT", Interval.M1).update(base)
