"""Metrics, conformal quantiles and the train/test gap on small synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from coincast.evaluate.metrics import diebold_mariano, leaderboard, report_records, score
from coincast.evaluate.probabilistic import probabilistic_scores
from coincast.evaluate.trading import default_strategy
from coincast.evaluate.walk_forward import training_frame
from coincast.train.conformal import conformal_quantile, conformal_quantiles, rolling_conformal


def _preds(rng: np.random.Generator, n: int, model: str, noise: float) -> pd.DataFrame:
    origin = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    actual = origin * np.exp(rng.normal(0, 0.01, n))
    pred = origin if noise == 0 else origin * np.exp(np.log(actual / origin) + rng.normal(0, noise, n))
    t = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "model": model,
            "horizon": "1h",
            "origin_time": t,
            "target_time": t + pd.Timedelta(hours=1),
            "predicted_price": pred,
            "lower": pred * 0.985,
            "upper": pred * 1.015,
            "prob_up": np.where(pred > origin, 0.6, 0.4),
            "actual_price": actual,
            "origin_price": origin,
            "level": 0.9,
        }
    )


def test_score_matches_definitions() -> None:
    rng = np.random.default_rng(1)
    g = _preds(rng, 500, "oracle_ish", 0.005)
    s = score(g)
    a, p, o = g["actual_price"], g["predicted_price"], g["origin_price"]
    assert s["n"] == 500
    assert s["mae"] == pytest.approx(np.mean(np.abs(p - a)))
    assert s["rmse"] == pytest.approx(np.sqrt(np.mean((p - a) ** 2)))
    assert s["mase"] == pytest.approx(np.mean(np.abs(p - a)) / np.mean(np.abs(o - a)))
    assert s["mape"] == pytest.approx(100 * np.mean(np.abs(p - a) / a))
    da = np.mean((g["prob_up"] > 0.5) == (a > o))
    assert s["directional_accuracy"] == pytest.approx(da)
    assert s["da_ci_low"] < da < s["da_ci_high"]
    assert s["interval_coverage"] == pytest.approx(np.mean((g["lower"] <= a) & (a <= g["upper"])))
    assert s["mase"] < 1.0 and s["r2_returns"] > 0.5
    assert s["dm_pvalue_mae"] < 1e-6 and s["dm_pvalue_mse"] < 1e-6


def test_persistence_scores_one_and_has_no_dm() -> None:
    s = score(_preds(np.random.default_rng(2), 300, "persistence", 0.0))
    assert s["mase"] == 1.0 and s["dm_pvalue_mae"] is None and s["dm_pvalue_mse"] is None
    assert s["strategy_trades"] == 0.0 and s["strategy_return"] == 0.0 and s["break_even_bps"] is None
    assert s["r2_returns"] is not None and s["r2_returns"] <= 0.0


def test_wilson_interval_known_value() -> None:
    g = _preds(np.random.default_rng(3), 100, "m", 0.01)
    s = score(g)
    k = round(s["directional_accuracy"] * 100)  # type: ignore[operator]
    p, z = k / 100, 1.959963984540054
    centre = (p + z * z / 200) / (1 + z * z / 100)
    half = z * np.sqrt(p * (1 - p) / 100 + z * z / 40000) / (1 + z * z / 100)
    assert s["da_ci_low"] == pytest.approx(centre - half) and s["da_ci_high"] == pytest.approx(centre + half)


def test_diebold_mariano_by_hand_one_sided_with_hac_and_hln() -> None:
    ref = np.array([3.0, 2.0, 4.0, 3.0, 3.0])
    model = ref - np.array([1.0, 0.0, 2.0, 1.0, 1.0])  # d = ref - model: mean 1, demeaned 0,-1,1,0,0
    # h = 1: var = 2/5; DM = 1 / sqrt(0.4 / 5); HLN sqrt((5 + 1 - 2) / 5): DM = sqrt(10)
    assert diebold_mariano(model, ref) == pytest.approx(stats.t.sf(math.sqrt(10), df=4), rel=1e-12)
    # h = 2: lag-1 autocovariance sum -1 at Bartlett weight 1/2: S = 2 - 1 = 1, var = 1/5;
    # DM = 1 / sqrt(0.2 / 5) = 5; HLN sqrt((5 + 1 - 4 + 2/5) / 5) = sqrt(0.48): DM = sqrt(12)
    assert diebold_mariano(model, ref, 2) == pytest.approx(stats.t.sf(math.sqrt(12), df=4), rel=1e-12)
    # one-sided: the worse model gets 1 - p, never a small p
    assert diebold_mariano(ref, model) == pytest.approx(1 - stats.t.sf(math.sqrt(10), df=4), rel=1e-12)
    assert np.isnan(diebold_mariano(ref, ref))


def test_diebold_mariano_equal_models_not_significant() -> None:
    rng = np.random.default_rng(4)
    e1, e2 = rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)
    assert 0.01 < diebold_mariano(e1**2, e2**2) < 0.99
    assert diebold_mariano((e1 * 0.5) ** 2, e2**2) < 1e-6
    assert diebold_mariano(e2**2, (e1 * 0.5) ** 2) > 1 - 1e-6


def test_better_in_mae_worse_in_mse_wins_only_on_mae() -> None:
    # persistence misses by exactly 1 every hour; the model is exact on 90 % of the hours and
    # misses by 5 on the rest: MAE 0.5 < 1 but MSE 2.5 > 1.
    rng = np.random.default_rng(6)
    n = 1000
    t = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    origin = np.full(n, 100.0)
    actual = origin + rng.choice([-1.0, 1.0], n)
    miss = rng.permutation(np.r_[np.zeros(900), np.ones(100)]) * rng.choice([-5.0, 5.0], n)
    base = pd.DataFrame({"symbol": "BTCUSDT", "horizon": "1h", "origin_time": t,
                         "target_time": t + pd.Timedelta(hours=1), "origin_price": origin,
                         "actual_price": actual, "prob_up": 0.5, "level": 0.9})
    model = base.assign(model="lumpy", predicted_price=actual + miss)
    pers = base.assign(model="persistence", predicted_price=origin)
    for f in (model, pers):
        f["lower"], f["upper"] = f["predicted_price"] - 2, f["predicted_price"] + 2
    s = score(model)
    assert s["mase"] == pytest.approx(0.5) and s["rmse"] == pytest.approx(math.sqrt(2.5))
    assert s["dm_pvalue_mae"] < 1e-6  # significantly better in absolute error
    assert s["dm_pvalue_mse"] > 0.95  # and worse in squared error: not a win there
    # the old rule (MASE < 1 and a two-sided test on squared errors) called this a win
    d = np.square(actual + miss - actual) - np.square(origin - actual)
    two_sided = 2 * stats.t.sf(abs(d.mean() / math.sqrt(d.var() / n) * math.sqrt((n - 1) / n)), df=n - 1)
    assert two_sided < 0.05
    board = leaderboard(report_records(pd.concat([pers, model])))
    row = board.set_index("model").loc["lumpy"]
    assert (row["beats_persistence_mae"], row["beats_persistence_mse"]) == (1, 0)
    assert (row["trails_persistence_mae"], row["trails_persistence_mse"]) == (0, 1)
    assert board.set_index("model").loc["persistence", "beats_persistence_mae"] == 0


def test_after_cost_scores_of_the_default_strategy() -> None:
    # long 100 -> 110, flat, short 110 -> 88 at 10 bp fee + 5 bp slippage (see test_engine)
    t = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    g = pd.DataFrame({"symbol": "BTCUSDT", "model": "m", "horizon": "1h", "origin_time": t,
                      "target_time": t + pd.Timedelta(hours=1), "origin_price": [100.0, 110, 110],
                      "predicted_price": [101.0, 110, 80], "actual_price": [110.0, 110, 88], "prob_up": 0.5,
                      "lower": 0.0, "upper": 1e9, "level": 0.9})
    s = score(g)
    k = 0.0015
    assert s["strategy_return"] == pytest.approx((1 - k) ** 2 * 1.1 * (1 - k) * 1.2 * (1 - k * 0.8 / 1.2) - 1)
    assert s["buy_and_hold_return"] == pytest.approx(-0.12)
    assert s["buy_and_hold_max_drawdown"] == pytest.approx(0.88 / 1.1 - 1)
    assert (s["strategy_trades"], s["cost_bps"]) == (2.0, 15.0)
    assert s["strategy_turnover"] == pytest.approx(3 + 0.8 / 1.2)
    assert s["strategy_max_drawdown"] == 0.0  # marked at period ends, the curve only rises
    # break-even: 1.32 * (1 - c)^3 * (1 - c * 2/3) = 1
    c = s["break_even_bps"] / 1e4  # type: ignore[operator]
    assert 1.32 * (1 - c) ** 3 * (1 - c * 2 / 3) == pytest.approx(1.0, abs=1e-12)
    free = score(g, default_strategy(0, 0))
    assert free["strategy_return"] == pytest.approx(1.1 * 1.2 - 1) and free["cost_bps"] == 0


def test_pinball_and_calibration_by_hand() -> None:
    t = pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC")
    g = pd.DataFrame({"symbol": "X", "model": "m", "horizon": "1h", "origin_time": t,
                      "target_time": t + pd.Timedelta(hours=1), "origin_price": 100.0,
                      "predicted_price": 100.0, "actual_price": [101.0, 98.0], "prob_up": 0.5,
                      "lower": 90.0, "upper": 110.0, "level": 0.9,
                      "lower_50": 99.0, "upper_50": [102.0, 101.0]})
    s = probabilistic_scores(g)
    assert s["coverage_50"] == 0.5  # 99 <= 101 <= 102, but 98 < 99
    # tau 0.25 on the lower quantile: (0.25 * 2 + 0.75 * 1) / 2 = 0.625;
    # tau 0.75 on the upper: (0.25 * 1 + 0.25 * 3) / 2 = 0.5; in % of the origin price 100
    assert s["pinball_pct"] == pytest.approx((0.625 + 0.5) / 2)
    assert s["coverage_90"] is None
    # without band columns the stated interval is the one band
    s = probabilistic_scores(g.drop(columns=["lower_50", "upper_50"]))
    assert s["coverage_90"] == 1.0 and s["coverage_50"] is None
    assert s["pinball_pct"] == pytest.approx(((0.05 * 11 + 0.05 * 8) / 2 + (0.05 * 9 + 0.05 * 12) / 2) / 2)


def test_leaderboard_ranks_by_mase_with_persistence() -> None:
    rng = np.random.default_rng(5)
    preds = pd.concat([_preds(rng, 200, "persistence", 0.0), _preds(rng, 200, "good", 0.002)])
    board = leaderboard(report_records(preds))
    assert list(board["model"]) == ["good", "persistence"]


def test_conformal_quantile_is_finite_sample_split_conformal() -> None:
    r = np.arange(1.0, 20.0)  # 19 residuals: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(r, 0.9) == 18.0
    assert conformal_quantile(r[:5], 0.9) == float("inf")


def test_rolling_conformal_uses_only_realised_residuals() -> None:
    n = 50
    origin = np.arange(n, dtype=np.int64) * 10
    target = origin + 10
    mu, sigma = np.zeros(n), np.ones(n)
    realized = np.where(np.arange(n) < 25, 0.1, 5.0)  # a regime change at row 25
    wanted = np.ones(n, dtype=bool)
    q, _, bands = rolling_conformal(
        origin_ms=origin,
        target_ms=target,
        mu=mu,
        sigma=sigma,
        realized=realized,
        wanted=wanted,
        initial=np.full(20, 0.1),
        level=0.9,
        band_levels=(0.5, 0.95),
    )
    # Row 25's own residual (5.0) is realised at its target time, after its origin: unused there.
    assert q[25] == pytest.approx(0.1)
    assert q[-1] == pytest.approx(5.0)
    # Row 25: the pool (maxlen 20) still holds only residuals of 0.1.
    assert bands.shape == (n, 2) and bands[25].tolist() == pytest.approx([0.1, 0.1])
    # Last row: the pool (maxlen 20) holds 20 residuals of 5.0 -> ceil(21 * 0.95) = 20th: 5.0.
    assert bands[-1].tolist() == pytest.approx([5.0, 5.0])


def test_conformal_quantiles_match_the_single_level_quantile() -> None:
    r = np.abs(np.random.default_rng(9).normal(size=37))
    levels = (0.5, 0.8, 0.9, 0.95, 0.99)
    assert conformal_quantiles(r, levels) == [conformal_quantile(r, lv) for lv in levels]
    # 37 residuals: ceil(38 * 0.5) = 19th smallest; 0.99 needs ceil(38 * 0.99) = 38 > 37: infinite.
    assert conformal_quantiles(np.arange(1.0, 38.0), (0.5, 0.99)) == [19.0, float("inf")]


def test_training_frame_hides_targets_after_the_cut() -> None:
    h = 3_600_000
    frame = pd.DataFrame({"open_ms": np.arange(10, dtype=np.int64) * h, "target": np.linspace(0.1, 1.0, 10)})
    train = training_frame(frame, 5 * h, h)
    assert train["open_ms"].max() == 5 * h
    known = train.dropna(subset=["target"])
    assert (known["open_ms"] + h).max() <= 5 * h
    assert np.isnan(train["target"].iloc[-1])
