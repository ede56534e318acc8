"""Risk measures, portfolios and the analytics report on hand-checkable inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coincast.analytics import build_report, risk
from coincast.analytics import portfolio as pf
from coincast.domain import InvalidRequest


def test_max_drawdown_known_path() -> None:
    # peak 120 at index 2, trough 60 at index 4: -50 %; the later fall 150 -> 90 is only -40 %
    prices = np.array([100.0, 110.0, 120.0, 80.0, 60.0, 150.0, 90.0])
    dd = risk.max_drawdown(prices)
    assert dd.depth == pytest.approx(-0.5) and (dd.peak, dd.trough) == (2, 4)
    assert risk.max_drawdown(np.array([1.0, 2.0, 3.0])).depth == 0.0


def test_var_cvar_by_hand() -> None:
    r = np.arange(-10, 10, dtype=float) / 100  # -10 % ... +9 %, 20 values
    # 5 % quantile with linear interpolation: position 0.05 * 19 = 0.95 between -0.10 and -0.09
    assert risk.var_historical(r, 0.95) == pytest.approx(0.0905)
    assert risk.cvar_historical(r, 0.95) == pytest.approx(0.10)  # only -10 % is at or below the quantile
    mu, sd = r.mean(), r.std(ddof=1)
    assert risk.var_parametric(r, 0.95) == pytest.approx(-(mu - 1.6448536269514722 * sd))
    assert risk.cvar_parametric(r, 0.95) == pytest.approx(-mu + sd * 0.10313564037537128 / 0.05)


def test_sharpe_sortino_vol_by_hand() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.00])
    mean, sd = 0.005, np.std(r, ddof=1)
    assert risk.annualised_vol(r, 365) == pytest.approx(sd * math.sqrt(365))
    assert risk.sharpe(r, 365) == pytest.approx(mean / sd * math.sqrt(365))
    downside = math.sqrt((0.02**2) / 4)
    assert risk.sortino(r, 365) == pytest.approx(mean / downside * math.sqrt(365))
    assert risk.sharpe(r, 365, risk_free_annual=0.365) == pytest.approx((mean - 0.001) / sd * math.sqrt(365))
    assert math.isnan(risk.sharpe(np.array([0.01, 0.01]), 365))


def test_trend_labels() -> None:
    days = np.arange(30, dtype=float)
    assert risk.trend(days, 0.01 * days).label == "up"
    assert risk.trend(days, -0.01 * days).slope_per_day == pytest.approx(-0.01)
    noise = np.random.default_rng(3).normal(0, 1, 30)
    assert risk.trend(days, noise * 1e-3 + 5).label == "flat"


def test_portfolios_on_a_known_covariance() -> None:
    # two uncorrelated assets with vol 10 % and 20 %
    cov = np.diag([0.01, 0.04])
    mu = np.array([0.05, 0.20])
    mv = pf.min_variance(cov)
    np.testing.assert_allclose(mv, [0.8, 0.2], atol=1e-6)  # w ∝ 1/σ² for uncorrelated assets
    rp = pf.risk_parity(cov)
    np.testing.assert_allclose(rp, [2 / 3, 1 / 3], atol=1e-6)  # w ∝ 1/σ
    ms = pf.max_sharpe(mu, cov)
    want = (mu / np.diag(cov)) / (mu / np.diag(cov)).sum()  # Σ⁻¹μ, normalised (all positive here)
    np.testing.assert_allclose(ms, want, atol=1e-5)
    by_name = {p.strategy: p for p in pf.suggest(["A", "B"], mu, cov)}
    assert by_name["risk_parity"].risk_contributions == pytest.approx([0.5, 0.5], abs=1e-6)
    assert by_name["min_variance"].volatility == pytest.approx(math.sqrt(0.8**2 * 0.01 + 0.2**2 * 0.04))
    assert by_name["max_sharpe"].sharpe >= max(p.sharpe for p in by_name.values()) - 1e-9


def _klines(closes: dict[str, list[float]], freq: str = "1D") -> pd.DataFrame:
    frames = []
    for sym, cl in closes.items():
        c = np.array(cl)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "open_time": pd.date_range("2024-01-01", periods=len(c), freq=freq, tz="UTC"),
                    "open": np.concatenate([[c[0]], c[:-1]]),
                    "high": c * 1.01,
                    "low": c * 0.99,
                    "close": c,
                    "volume": 10.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_report_by_hand(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rising = 90 * np.exp(np.cumsum(np.abs(rng.normal(0, 0.02, 60))))  # no new drawdown after 150 -> 90
    btc = [100.0, 110.0, 120.0, 80.0, 60.0, 150.0, 90.0, *rising]
    eth = list(50 * np.exp(np.cumsum(rng.normal(0, 0.03, 67))))
    report = build_report(_klines({"BTCUSDT": btc, "ETHUSDT": eth}))
    row = report.summary.set_index("symbol").loc["BTCUSDT"]
    assert row["max_drawdown"] == pytest.approx(-0.5)
    assert row["drawdown_peak"] == pd.Timestamp("2024-01-03", tz="UTC")
    assert row["avg_price"] == pytest.approx(np.mean(btc)) and row["last_price"] == btc[-1]
    assert row["period_return"] == pytest.approx(btc[-1] / btc[0] - 1)
    daily = np.diff(btc) / np.array(btc[:-1])
    assert row["ann_volatility"] == pytest.approx(np.std(daily, ddof=1) * math.sqrt(365))
    assert row["var_95_hist"] == pytest.approx(-np.quantile(daily, 0.05))
    assert row["return_7d"] == pytest.approx(btc[-1] / btc[-8] - 1)  # open of the first of 7 days = close before
    assert report.correlation.loc["BTCUSDT", "BTCUSDT"] == pytest.approx(1.0)
    eth_daily = np.diff(eth) / np.array(eth[:-1])
    assert report.correlation.loc["BTCUSDT", "ETHUSDT"] == pytest.approx(np.corrcoef(daily, eth_daily)[0, 1])
    assert set(report.portfolios["strategy"]) == set(pf.STRATEGIES)
    sums = report.weights.groupby("strategy")["weight"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    jan = report.monthly[(report.monthly["symbol"] == "BTCUSDT")].iloc[0]
    assert jan["return"] == pytest.approx(btc[30] / btc[0] - 1)  # 31 January days: open of day 1 = btc[0]
    written = report.to_csv(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(f"{t}.csv" for t in report.tables())
    back = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(back["symbol"]) == ["BTCUSDT", "ETHUSDT"]
    records = report.to_records()
    json.dumps(records)  # serialisable as is
    btc_rec = records["summary"][0]
    assert btc_rec["symbol"] == "BTCUSDT" and btc_rec["drawdown_peak"] == "2024-01-03T00:00:00+00:00"
    assert btc_rec["max_drawdown"] == pytest.approx(-0.5) and type(btc_rec["candles"]) is int
    one = report.to_csv(tmp_path / "report.csv")
    assert one[0] == tmp_path / "report.csv" and (tmp_path / "report_weights.csv").exists()


def test_report_period_and_errors() -> None:
    k = _klines({"BTCUSDT": list(np.linspace(100, 200, 100)), "ETHUSDT": list(np.linspace(10, 5, 100))})
    last30 = build_report(k, period="30d")
    assert (last30.summary["candles"] == 30).all()
    assert last30.summary.set_index("symbol").loc["BTCUSDT", "trend_30d"] == "up"
    assert last30.summary.set_index("symbol").loc["ETHUSDT", "trend_30d"] == "down"
    with pytest.raises(InvalidRequest, match="unknown period"):
        build_report(k, period="fortnight")
    with pytest.raises(InvalidRequest, match="not in the data"):
        build_report(k, symbols=["SOLUSDT"])
    one = build_report(k, symbols=["btcusdt"])
    assert one.portfolios.empty and any("portfolios skipped" in n for n in one.notes)
