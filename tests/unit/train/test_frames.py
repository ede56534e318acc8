"""Horizon frames from klines: origin grid, targets, gaps, signals (synthetic klines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coincast.domain import Interval, InvalidRequest
from coincast.train.frames import ewma_volatility, horizon_frames
from coincast.train.signals import technical_signals


def _klines(n: int, seed: int = 0, start: str = "2024-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    t = pd.date_range(start, periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "open_time": t,
            "open": close * 0.999,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        }
    )


def test_daily_horizon_on_hourly_bars_uses_day_closes() -> None:
    k = _klines(24 * 40)
    f = horizon_frames(k, Interval.D1)["BTCUSDT"]
    times = pd.to_datetime(f["open_ms"], unit="ms", utc=True)
    assert (times.dt.hour == 23).all() and len(f) == 40
    closes = k.set_index("open_time")["close"]
    t0 = times.iloc[3]
    expect = np.log(closes[t0 + pd.Timedelta(days=1)] / closes[t0])
    assert f["target"].iloc[3] == pytest.approx(expect)
    assert np.isnan(f["target"].iloc[-1])  # the last day's target is not in the data


def test_gap_leaves_target_unknown() -> None:
    k = _klines(500).drop(index=[300])  # one missing hour
    f = horizon_frames(k, Interval.H1)["BTCUSDT"].set_index("open_ms")
    before = int(k["open_time"].iloc[299].value // 1_000_000)
    assert np.isnan(f.loc[before, "target"])
    assert np.isnan(f.loc[before + 2 * 3_600_000, "h_ret_1"])  # return across the gap unknown


def test_horizon_shorter_than_bars_is_rejected() -> None:
    k = _klines(100)
    with pytest.raises(InvalidRequest, match="whole multiple"):
        horizon_frames(k, Interval.M30)


def test_ewma_volatility_is_causal() -> None:
    r = np.random.default_rng(1).normal(0, 0.01, 300)
    full = ewma_volatility(r)
    np.testing.assert_array_equal(ewma_volatility(r[:200]), full[:200])


def test_signals_from_the_last_row() -> None:
    k = _klines(400)
    k["close"] = np.linspace(100, 140, 400)  # steady rise
    s = technical_signals(horizon_frames(k, Interval.H1)["BTCUSDT"].iloc[-1])
    assert s.trend == "up" and s.momentum == "up" and s.zone == "overbought"


def test_latest_forecast_from_the_last_bar() -> None:
    from coincast.train.latest import latest_forecast

    k = _klines(600)
    out = latest_forecast(k, "BTCUSDT", Interval.H1, "persistence")
    last = k.iloc[-1]
    assert len(out.forecast) == 1
    assert out.forecast.origin_ms[0] == last["open_time"].value // 1_000_000
    assert out.forecast.predicted_price[0] == pytest.approx(last["close"])
    assert out.forecast.lower[0] < last["close"] < out.forecast.upper[0]
    assert out.signals.trend in {"up", "down", "flat"}
