"""Realised-volatility forecasts: the target by hand, no look-ahead, scores against naive by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from coincast.domain import Interval, InvalidRequest
from coincast.evaluate.volatility import vol_leaderboard, vol_records, walk_vol
from coincast.train.volatility import VOL_MODELS, create_vol_model, garman_klass, vol_frame

H = 3_600_000
T0 = 1_680_307_200_000  # 2023-04-01 00:00 UTC


def bars(n: int, seed: int = 0) -> pd.DataFrame:
    """Hourly OHLC with GARCH-like volatility clustering."""
    rng = np.random.default_rng(seed)
    var, rets = 1e-5, np.empty(n)
    for i in range(n):
        var = 2e-7 + 0.1 * (rets[i - 1] ** 2 if i else 0.0) + 0.88 * var
        rets[i] = math.sqrt(var) * rng.standard_normal()
    close = 100 * np.exp(np.cumsum(rets))
    open_ = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0, np.sqrt(1e-5), n)) + np.abs(rets)
    return pd.DataFrame({"symbol": "BTCUSDT", "open_ms": T0 + np.arange(n, dtype=np.int64) * H, "open": open_,
                         "high": np.maximum(open_, close) * np.exp(spread / 2),
                         "low": np.minimum(open_, close) * np.exp(-spread / 2), "close": close})


def test_garman_klass_by_hand() -> None:
    b = pd.DataFrame({"open": [100.0], "high": [110.0], "low": [95.0], "close": [105.0]})
    want = 0.5 * math.log(110 / 95) ** 2 - (2 * math.log(2) - 1) * math.log(105 / 100) ** 2
    assert garman_klass(b)[0] == pytest.approx(want, rel=1e-12)


def test_vol_frame_targets_are_the_next_horizon() -> None:
    b = bars(30 * 24)
    gk = garman_klass(b)
    f = vol_frame(b, Interval.H1)
    assert f["rv_last"].iloc[5] == pytest.approx(gk[5]) and f["target"].iloc[5] == pytest.approx(gk[6])
    assert np.isnan(f["target"].iloc[-1])
    d = vol_frame(b, Interval.D1)
    assert ((d["open_ms"] - T0) % 86_400_000 == 23 * H).all()
    first = int((d["open_ms"].iloc[0] - T0) // H)  # the row of the first day's 23:00 bar
    assert d["rv_last"].iloc[0] == pytest.approx(gk[first - 23 : first + 1].sum())
    assert d["target"].iloc[0] == pytest.approx(gk[first + 1 : first + 25].sum())
    assert d["har_m"].iloc[6] == pytest.approx(gk[first + 6 * 24 - 167 : first + 6 * 24 + 1].mean() * 24)
    with pytest.raises(InvalidRequest, match="1h or 1d"):
        vol_frame(b, Interval.M5)


@pytest.mark.parametrize("name", sorted(VOL_MODELS))
@pytest.mark.parametrize("horizon", [Interval.H1, Interval.D1])
def test_no_look_ahead_forecasts_equal_on_truncated_history(name: str, horizon: Interval) -> None:
    b = bars(60 * 24, seed=3)
    cut_ms = T0 + 40 * 86_400_000 - H
    stop_ms = cut_ms + 10 * 86_400_000
    full = walk_vol(b, name, horizon, train_end_ms=cut_ms, test_end_ms=int(b["open_ms"].iloc[-1]),
                    retrain_every_ms=30 * 86_400_000)
    # everything after stop_ms replaced by other prices, then removed: forecasts up to stop_ms do not move
    noisy = b.copy()
    later = noisy["open_ms"] > stop_ms
    wild = np.random.default_rng(9).uniform(1.0, 1.1, int(later.sum()))
    noisy.loc[later, "high"] *= wild
    noisy.loc[later, "close"] *= np.sqrt(wild)
    for alt in (noisy, b[b["open_ms"] <= stop_ms + horizon.ms]):
        part = walk_vol(alt, name, horizon, train_end_ms=cut_ms, test_end_ms=stop_ms + horizon.ms,
                        retrain_every_ms=30 * 86_400_000)
        keep = full["origin_time"] <= pd.Timestamp(stop_ms, unit="ms", tz="UTC")
        np.testing.assert_allclose(part["predicted_variance"].to_numpy()[: int(keep.sum())],
                                   full.loc[keep, "predicted_variance"].to_numpy(), rtol=1e-9)
    assert full["predicted_variance"].gt(0).all() and len(full) > 5


def test_scores_against_naive_by_hand() -> None:
    t = pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC")
    base = pd.DataFrame({"symbol": "X", "horizon": "1h", "origin_time": t, "target_time": t + pd.Timedelta(hours=1),
                         "realised_variance": [1.0, 4.0], "window": 0})
    preds = pd.concat([base.assign(model="naive", predicted_variance=[1.0, 1.0]),
                       base.assign(model="m", predicted_variance=[2.0, 2.0])])
    recs = {r["model"]: r for r in vol_records(preds)}
    # QLIKE y/f - log(y/f) - 1: model (0.5 + log 2 - 1 + 2 - log 2 - 1) / 2 = 0.25; naive (0 + 3 - log 4) / 2
    assert recs["m"]["qlike"] == pytest.approx(0.25)
    assert recs["naive"]["qlike"] == pytest.approx((3 - math.log(4)) / 2)
    assert recs["m"]["qlike_ratio"] == pytest.approx(0.25 / ((3 - math.log(4)) / 2))
    assert recs["m"]["mse_ratio"] == pytest.approx(2.5 / 4.5)
    assert recs["naive"]["dm_pvalue_qlike"] is None


def test_models_beat_naive_on_clustered_volatility() -> None:
    b = bars(120 * 24, seed=5)
    cut = T0 + 90 * 86_400_000 - H
    preds = pd.concat([walk_vol(b, m, Interval.H1, train_end_ms=cut, test_end_ms=int(b["open_ms"].iloc[-1]),
                                retrain_every_ms=14 * 86_400_000) for m in ("naive", "har", "garch")])
    board = vol_leaderboard(vol_records(preds)).set_index("model")
    assert board.loc["har", "qlike_ratio"] < 0.9 and board.loc["garch", "qlike_ratio"] < 0.9
    assert board.loc["har", "beats_naive_qlike"] == 1 and board.loc["naive", "beats_naive_qlike"] == 0


def test_unknown_model_is_named() -> None:
    with pytest.raises(InvalidRequest, match="expected one of naive, har"):
        create_vol_model("prophet", Interval.H1)
