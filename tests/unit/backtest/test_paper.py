"""Paper trading follows the backtest's rules, whatever order the forecasts and outcomes arrive in."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coincast.backtest import BacktestConfig, PaperAccount, predictions_frame, run_backtest
from coincast.store.predictions import LivePrediction

H = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % H


def live(n: int, seed: int = 2) -> list[LivePrediction]:
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n + 1)))
    return [
        LivePrediction(
            model_id="m-1",
            model="drift",
            symbol="BTCUSDT",
            horizon="1h",
            interval="1h",
            origin_ms=T0 + i * H,
            target_ms=T0 + (i + 1) * H,
            due_ms=T0 + (i + 2) * H,
            origin_price=float(prices[i]),
            predicted_price=float(prices[i] * (1 + rng.normal(0, 0.01))),
            lower=float(prices[i] * 0.98),
            upper=float(prices[i] * 1.02),
            prob_up=float(rng.uniform()),
            volatility=None,
            level=0.9,
            created_ms=T0 + i * H + 1,
            actual_price=float(prices[i + 1]),
            scored_ms=T0 + (i + 2) * H,
        )
        for i in range(n)
    ]


def test_paper_record_equals_the_backtest_and_positions_arrive_before_outcomes() -> None:
    cfg = BacktestConfig(strategy="long_short", fee_bps=10, slippage_bps=5)
    scored = live(40)
    account = PaperAccount("BTCUSDT", "drift", "1h", cfg)
    for p in scored:
        # the forecast arrives unscored: the account takes its position at once ...
        assert account.observe([dataclasses.replace(p, actual_price=None, scored_ms=None)]) == 1
        pos = account.position()
        expected = np.sign(p.predicted_price - p.origin_price)
        assert (pos.weight if pos else 0.0) == expected
        # ... and an unscored copy never overwrites a scored one
        account.observe([p])
        assert account.observe([dataclasses.replace(p, actual_price=None)]) == 0
    res = account.result()
    assert res is not None
    (batch,) = run_backtest(predictions_frame(scored), cfg)
    assert res.metrics == pytest.approx(batch.metrics, nan_ok=True)
    assert res.trades["net_return"].tolist() == pytest.approx(batch.trades["net_return"].tolist())


def test_paper_settles_only_up_to_the_first_unscored_forecast() -> None:
    preds = live(10)
    preds[6] = dataclasses.replace(preds[6], actual_price=None, scored_ms=None)
    other = dataclasses.replace(preds[0], symbol="ETHUSDT")
    account = PaperAccount("BTCUSDT", "drift", "1h", BacktestConfig())
    assert account.observe([*preds, other]) == 10
    res = account.result()
    assert res is not None and res.metrics["periods"] == 6
    assert PaperAccount("BTCUSDT", "drift", "1h", BacktestConfig()).result() is None
