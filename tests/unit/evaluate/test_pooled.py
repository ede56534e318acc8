"""Global models: one estimator over every coin, walked forward without looking ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.unit.registry.models_synth import make_klines

from coincast.domain import Interval, InvalidRequest
from coincast.evaluate.pooled import evaluate_pooled, with_coin
from coincast.evaluate.run import parse_models
from coincast.evaluate.walk_forward import PREDICTION_COLUMNS, WalkForwardConfig, walk_forward
from coincast.train.frames import horizon_frames

H = Interval.H1.ms
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _cfg(klines: pd.DataFrame, models: tuple[str, ...], test_end_ms: int) -> WalkForwardConfig:
    start = int(klines["open_time"].min().value // 1_000_000)
    return WalkForwardConfig(horizon=Interval.H1, models=models, train_end_ms=start + 600 * H,
                             test_end_ms=test_end_ms, retrain_every_ms=100 * H, n_jobs=1,
                             params={"lightgbm_global": {"n_estimators": 30}})


def test_global_model_forecasts_every_coin_from_one_fit_and_never_looks_ahead() -> None:
    k = make_klines(900, seed=4, symbols=SYMBOLS)
    start = int(k["open_time"].min().value // 1_000_000)
    t = start + 760 * H
    cfg = _cfg(k, ("lightgbm_global",), start + 899 * H)
    full = {r[0]: r[2] for r in evaluate_pooled(horizon_frames(k, Interval.H1), "lightgbm_global", cfg)}
    assert sorted(full) == list(SYMBOLS)
    for s in SYMBOLS:
        assert list(full[s].columns) == list(PREDICTION_COLUMNS) and (full[s]["model"] == "lightgbm_global").all()
        assert len(full[s]) == 899 - 600 and (full[s]["symbol"] == s).all()
    # every bar of every coin after t replaced by noise: forecasts for origins <= t do not move
    rng = np.random.default_rng(8)
    later = k["open_time"] > pd.Timestamp(t, unit="ms", tz="UTC")
    altered = k.copy()
    scale = rng.uniform(0.5, 1.5, int(later.sum()))
    for col in ("open", "high", "low", "close"):
        altered.loc[later, col] *= scale
    noisy = {r[0]: r[2] for r in evaluate_pooled(horizon_frames(altered, Interval.H1), "lightgbm_global", cfg)}
    for s in SYMBOLS:
        keep = full[s]["origin_time"] <= pd.Timestamp(t, unit="ms", tz="UTC")
        assert keep.sum() > 100
        for col in ("predicted_price", "lower", "upper", "prob_up", "predicted_volatility"):
            np.testing.assert_allclose(noisy[s].loc[keep, col], full[s].loc[keep, col], rtol=1e-9, err_msg=col)
        assert not np.allclose(noisy[s]["predicted_price"], full[s]["predicted_price"])


def test_the_model_is_pooled_one_coins_history_moves_the_others_forecast() -> None:
    k = make_klines(800, seed=5, symbols=SYMBOLS)
    start = int(k["open_time"].min().value // 1_000_000)
    cfg = _cfg(k, ("lightgbm_global",), start + 799 * H)
    base = {r[0]: r[2] for r in evaluate_pooled(horizon_frames(k, Interval.H1), "lightgbm_global", cfg)}
    other = k.copy()
    eth = other["symbol"] == "ETHUSDT"
    other.loc[eth, ["open", "high", "low", "close"]] = make_klines(800, seed=99, symbols=("ETHUSDT",))[
        ["open", "high", "low", "close"]
    ].to_numpy()
    moved = {r[0]: r[2] for r in evaluate_pooled(horizon_frames(other, Interval.H1), "lightgbm_global", cfg)}
    assert not np.allclose(moved["BTCUSDT"]["predicted_price"], base["BTCUSDT"]["predicted_price"])


def test_walk_forward_runs_global_models_beside_per_coin_ones() -> None:
    k = make_klines(800, seed=6, symbols=SYMBOLS)
    start = int(k["open_time"].min().value // 1_000_000)
    cfg = _cfg(k, ("persistence", "logistic_regression", "logistic_regression_global"), start + 799 * H)
    preds, fit_s = walk_forward(horizon_frames(k, Interval.H1), cfg)
    assert set(zip(preds["symbol"], preds["model"], strict=True)) == {
        (s, m) for s in SYMBOLS for m in cfg.models
    }
    assert preds.groupby(["symbol", "model"]).size().nunique() == 1
    assert fit_s[("BTCUSDT", "logistic_regression_global")] == fit_s[("ETHUSDT", "logistic_regression_global")]


def test_coin_columns_and_names() -> None:
    f = pd.DataFrame({"symbol": ["ETHUSDT"], "open_ms": [0]})
    assert with_coin(f, list(SYMBOLS)).iloc[0].to_dict() == {
        "symbol": "ETHUSDT", "open_ms": 0, "coin_BTCUSDT": 0.0, "coin_ETHUSDT": 1.0
    }
    assert parse_models("lightgbm_global,catboost_global") == ("persistence", "lightgbm_global", "catboost_global")
    with pytest.raises(InvalidRequest, match="gbm and classifier families, not deep"):
        parse_models("lstm_global")
    with pytest.raises(InvalidRequest, match="unknown model"):
        parse_models("prophet_global")


def test_compare_scopes_names_the_winner() -> None:
    from coincast.evaluate.pooled import compare_scopes

    board = pd.DataFrame({"horizon": "1h", "model": ["lda", "lda_global", "knn", "knn_global", "persistence"],
                          "mase": [0.99, 0.98, 0.97, 1.01, 1.0], "directional_accuracy": 0.5})
    got = compare_scopes(board).set_index("model")
    assert got.loc["lda", "winner"] == "global" and got.loc["knn", "winner"] == "per-coin"
    assert got.loc["lda", "mase_per_coin"] == 0.99 and got.loc["lda", "mase_global"] == 0.98
    assert list(got.index) == ["lda", "knn"]
