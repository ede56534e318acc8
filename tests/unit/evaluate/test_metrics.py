"""Metrics, conformal quantiles and the train/test gap on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coincast.evaluate.metrics import diebold_mariano, leaderboard, report_records, score
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
    assert s["mase"] < 1.0 and s["r2_returns"] > 0.5 and s["dm_pvalue"] < 1e-6


def test_persistence_scores_one_and_has_no_dm() -> None:
    s = score(_preds(np.random.default_rng(2), 300, "persistence", 0.0))
    assert s["mase"] == 1.0 and s["dm_pvalue"] is None
    assert s["r2_returns"] is not None and s["r2_returns"] <= 0.0


def test_wilson_interval_known_value() -> None:
    g = _preds(np.random.default_rng(3), 100, "m", 0.01)
    s = score(g)
    k = round(s["directional_accuracy"] * 100)  # type: ignore[operator]
    p, z = k / 100, 1.959963984540054
    centre = (p + z * z / 200) / (1 + z * z / 100)
    half = z * np.sqrt(p * (1 - p) / 100 + z * z / 40000) / (1 + z * z / 100)
    assert s["da_ci_low"] == pytest.approx(centre - half) and s["da_ci_high"] == pytest.approx(centre + half)


def test_diebold_mariano_equal_models_not_significant() -> None:
    rng = np.random.default_rng(4)
    e1, e2 = rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)
    assert diebold_mariano(e1, e2) > 0.01
    assert diebold_mariano(e1 * 0.5, e2) < 1e-6
    assert np.isnan(diebold_mariano(e1, e1))


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
