"""One table of model factories drives the shared model tests (every family, real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.unit.train.conftest import FAST_PARAMS

from coincast.domain import Interval, InvalidRequest
from coincast.train.frames import horizon_frames
from coincast.train.registry import MODELS, create_model, model_spec

H = Interval.H1.ms


def _train_frame(frame: pd.DataFrame, cut_ms: int) -> pd.DataFrame:
    train = frame[frame["open_ms"] <= cut_ms].copy()
    train.loc[train["open_ms"] + H > cut_ms, "target"] = np.nan
    return train


@pytest.mark.parametrize("name", list(MODELS))
def test_model_fits_predicts_and_never_looks_ahead(name: str, btc_slice: pd.DataFrame, tmp_path: Path) -> None:
    frame = horizon_frames(btc_slice, Interval.H1)["BTCUSDT"]
    om = frame["open_ms"].to_numpy()
    cut = int(om[1300])
    t = int(om[1450])
    before = frame.copy()
    model = create_model(name, seed=7, **FAST_PARAMS.get(name, {})).fit(_train_frame(frame, cut))
    pd.testing.assert_frame_equal(frame, before)  # input left unchanged

    # Forecasts for origins <= t from klines cut at t ...
    bar_ms = btc_slice["open_time"].astype("datetime64[ms, UTC]").astype("int64")
    cut_klines = btc_slice[bar_ms <= t]
    truncated = horizon_frames(cut_klines, Interval.H1)["BTCUSDT"]
    a = model.predict(truncated.drop(columns="target"), start_ms=cut)
    # ... equal those from klines whose every bar after t is replaced by noise.
    rng = np.random.default_rng(3)
    altered = btc_slice.copy()
    later = bar_ms > t
    scale = rng.uniform(0.5, 1.5, int(later.sum()))  # one factor per bar keeps low <= open, close <= high
    for col in ("open", "high", "low", "close"):
        altered.loc[later, col] = altered.loc[later, col] * scale
    altered.loc[later, "volume"] = altered.loc[later, "volume"] * rng.uniform(0.5, 1.5, int(later.sum()))
    full = horizon_frames(altered, Interval.H1)["BTCUSDT"]
    b = model.predict(full.drop(columns="target"), start_ms=cut)
    n = len(a)
    assert n == 151 and len(b) == len(frame) - 1300
    for field in ("predicted_price", "lower", "upper", "prob_up", "volatility"):
        # Equal up to float noise: torch kernels may sum in another order for another batch size;
        # any use of the altered future would move prices by percent, not 1e-9.
        np.testing.assert_allclose(getattr(a, field), getattr(b, field)[:n], rtol=1e-9, atol=0, err_msg=field)

    # Sane outputs: finite, ordered, probabilities in [0, 1], near the last price.
    assert np.isfinite(a.predicted_price).all() and np.isfinite(a.lower).all()
    assert (a.lower < a.predicted_price).all() and (a.predicted_price < a.upper).all()
    assert ((a.prob_up >= 0) & (a.prob_up <= 1)).all()
    assert np.all(np.abs(np.log(a.predicted_price / a.origin_price)) < 0.05)
    assert (a.target_ms == a.origin_ms + H).all() and a.horizon == "1h" and a.model == name

    # Scored against persistence on the same origins: not wildly worse than the random walk.
    actual = frame.set_index("open_ms")["close"].reindex(a.target_ms).to_numpy()
    ok = np.isfinite(actual)
    mase = np.mean(np.abs(a.predicted_price - actual)[ok]) / np.mean(np.abs(a.origin_price - actual)[ok])
    assert 0.5 < mase < (6.0 if name == "moving_average" else 1.3)  # a 24-bar mean lags

    # Save and load round-trip gives the same forecasts.
    model.save(tmp_path / name)
    again = type(model).load(tmp_path / name).predict(truncated.drop(columns="target"), start_ms=cut)
    np.testing.assert_array_equal(again.predicted_price, a.predicted_price)


def test_fixed_seed_reproduces_a_deep_model(btc_slice: pd.DataFrame) -> None:
    frame = horizon_frames(btc_slice, Interval.H1)["BTCUSDT"]
    cut = int(frame["open_ms"].iloc[1300])
    runs = [
        create_model("cnn_lstm", seed=5, **FAST_PARAMS["cnn_lstm"])
        .fit(_train_frame(frame, cut))
        .predict(frame, start_ms=cut)
        .predicted_price
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"unknown model 'prophet'.*persistence"):
        model_spec("prophet")


def test_too_little_training_data_is_a_clear_error(btc_slice: pd.DataFrame) -> None:
    frame = horizon_frames(btc_slice.head(60), Interval.H1)["BTCUSDT"]
    with pytest.raises(InvalidRequest, match="usable training samples"):
        create_model("persistence").fit(frame)


@pytest.mark.parametrize("name", ["lightgbm", "logistic_regression"])
def test_no_look_ahead_with_batch_layer_features(name: str, btc_slice: pd.DataFrame) -> None:
    from coincast.train.features import pipeline_available, pipeline_features

    if not pipeline_available():
        pytest.skip("coincast.features.pipeline not importable")
    frame = horizon_frames(btc_slice, Interval.H1, extra_features=pipeline_features)["BTCUSDT"]
    assert sum(c.startswith("pf_") for c in frame.columns) > 40
    om = frame["open_ms"].to_numpy()
    cut, t = int(om[1300]), int(om[1450])
    model = create_model(name, seed=1, **FAST_PARAMS.get(name, {})).fit(_train_frame(frame, cut))
    bar_ms = btc_slice["open_time"].astype("datetime64[ms, UTC]").astype("int64")
    truncated = horizon_frames(btc_slice[bar_ms <= t], Interval.H1, extra_features=pipeline_features)["BTCUSDT"]
    altered = btc_slice.copy()
    later = bar_ms > t
    rng = np.random.default_rng(9)
    scale = rng.uniform(0.5, 1.5, int(later.sum()))  # one factor per bar keeps low <= open, close <= high
    for col in ("open", "high", "low", "close"):
        altered.loc[later, col] = altered.loc[later, col] * scale
    altered.loc[later, "volume"] = altered.loc[later, "volume"] * rng.uniform(0.5, 1.5, int(later.sum()))
    full = horizon_frames(altered, Interval.H1, extra_features=pipeline_features)["BTCUSDT"]
    a = model.predict(truncated.drop(columns="target"), start_ms=cut)
    b = model.predict(full.drop(columns="target"), start_ms=cut)
    np.testing.assert_allclose(a.predicted_price, b.predicted_price[: len(a)], rtol=1e-12, atol=0)
    np.testing.assert_allclose(a.prob_up, b.prob_up[: len(a)], rtol=1e-12, atol=0)


def test_sigma_is_the_har_forecast_fitted_on_known_targets(btc_slice: pd.DataFrame) -> None:
    from coincast.train.volatility import HarVol, from_horizon_frame

    frame = horizon_frames(btc_slice, Interval.H1)["BTCUSDT"]
    cut = int(frame["open_ms"].iloc[1300])
    train = _train_frame(frame, cut)
    rows = from_horizon_frame(train)
    # the realised-variance target is visible exactly where the return target is
    assert np.isnan(rows["target"].iloc[-1]) and np.isfinite(rows["target"].iloc[-2])
    assert rows["target"].notna().sum() == train["target"].notna().sum()
    pool = np.zeros(100)  # a walk-forward's later window: one fit on everything
    model = create_model("persistence").fit(train, residuals=pool)
    want = np.sqrt(HarVol(Interval.H1).fit(rows, train).predict(from_horizon_frame(frame), frame))
    got = model._sigma(frame)
    ok = np.isfinite(want)
    assert ok.sum() > 1000
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12)
    # without a volatility model sigma is the EWMA of the frame
    ewma = create_model("persistence", vol_model=None).fit(train, residuals=pool)._sigma(frame)
    h_vol = frame["h_vol"].to_numpy(float)
    np.testing.assert_allclose(ewma[np.isfinite(h_vol)], h_vol[np.isfinite(h_vol)])
    assert not np.allclose(got[ok], ewma[ok])
