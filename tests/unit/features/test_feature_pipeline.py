"""build_features: columns, warm-up, targets, notes, bad input, and no look-ahead on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coincast.domain import InvalidRequest
from coincast.features.pipeline import build_features, feature_columns, plan_features, target_column
from coincast.features.registry import INDICATORS, OUTPUTS, Scale


def make_klines(symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"), n: int = 400, step_h: int = 1) -> pd.DataFrame:
    """Random-walk OHLCV candles (seeded), hourly unless ``step_h`` says otherwise."""
    rng = np.random.default_rng(7)
    frames = []
    for k, sym in enumerate(symbols):
        close = 100.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate([[close[0]], close[:-1]])
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "open_time": pd.date_range("2024-01-01", periods=n, freq=f"{step_h}h", tz="UTC"),
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.uniform(10, 100, n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def real_slice(shared_data: Path) -> pd.DataFrame:
    df = pd.read_parquet(
        shared_data / "klines_1h.parquet", filters=[("symbol", "in", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])]
    )
    return df[df["open_time"] < pd.Timestamp("2021-06-20", tz="UTC")].reset_index(drop=True)


def test_targets_by_hand() -> None:
    k = make_klines(("BTCUSDT",), n=300)
    out = build_features(k, horizons=("1h", "3h")).set_index("open_time")
    close = k.set_index("open_time")["close"]
    t = out.index[10]
    want_1h = np.log(close[t + pd.Timedelta(hours=1)] / close[t])
    assert out.loc[t, "target_logret_1h"] == pytest.approx(want_1h, rel=1e-12)
    assert out.loc[t, "target_up_1h"] == float(want_1h > 0)
    assert out.loc[t, "target_vol_1h"] == pytest.approx(abs(want_1h), rel=1e-9)
    steps = [np.log(close[t + pd.Timedelta(hours=i)] / close[t + pd.Timedelta(hours=i - 1)]) for i in (1, 2, 3)]
    assert out.loc[t, "target_vol_3h"] == pytest.approx(np.sqrt(np.sum(np.square(steps))), rel=1e-9)
    assert out.loc[t, "target_logret_3h"] == pytest.approx(np.sum(steps), rel=1e-9)
    # the last rows keep their features and have no target
    assert out["target_logret_3h"].iloc[-3:].isna().all() and out["target_logret_3h"].iloc[:-3].notna().all()
    assert out["target_up_3h"].iloc[-3:].isna().all()
    assert out[feature_columns(out)].iloc[-1].notna().all()


def test_target_across_a_gap_is_missing_not_stretched() -> None:
    k = make_klines(("BTCUSDT",), n=300)
    gap = k["open_time"].iloc[250]
    out = build_features(k[k["open_time"] != gap], horizons=("1h",)).set_index("open_time")
    assert np.isnan(out.loc[gap - pd.Timedelta(hours=1), "target_logret_1h"])
    assert not np.isnan(out.loc[gap - pd.Timedelta(hours=2), "target_logret_1h"])


def test_horizon_shorter_than_interval_is_skipped_with_a_note() -> None:
    out = build_features(make_klines(n=400, step_h=24), horizons=("1h", "1d"))
    assert "target_logret_1d" in out.columns and "target_logret_1h" not in out.columns
    assert any("horizon 1h skipped" in note for note in out.attrs["notes"])
    with pytest.raises(InvalidRequest, match="no usable horizon"):
        build_features(make_klines(n=400, step_h=24), horizons=("1h",))


def test_columns_warmup_and_names() -> None:
    k = make_klines(n=400)
    out = build_features(k)
    plan = plan_features(k)
    assert list(out.columns[:2]) == ["symbol", "open_time"]
    assert str(out["open_time"].dtype) == "datetime64[ms, UTC]"
    assert out.groupby("symbol").size().to_dict() == {"BTCUSDT": 400 - plan.warmup, "ETHUSDT": 400 - plan.warmup}
    first = out.groupby("symbol")["open_time"].min()
    assert (first == k["open_time"].iloc[plan.warmup]).all()
    for ind in INDICATORS:
        if not set(ind.requires) - {"open", "high", "low", "close", "volume"}:
            assert set(ind.columns) <= set(out.columns), ind.name
    for kind in ("logret", "up", "vol"):
        for h in ("1h", "1d"):
            assert target_column(kind, h) in out.columns
    feats = feature_columns(out)
    assert not any(c.startswith("target_") for c in feats)
    assert "sma_20" not in feats and "sma_20_rel" in feats and "rsi_14" in feats and "obv_z" in feats
    assert {"logret_1", "logret_168", "ret_skew_24", "hour", "day_of_week", "corr_btc_168", "beta_btc_168"} <= set(
        feats
    )
    assert not out[feats].isna().any().any(), "a feature is missing after warm-up"


def test_optional_columns_present_are_used_absent_are_skipped_not_zero_filled() -> None:
    k = make_klines(n=300)
    out = build_features(k.assign(quote_volume=np.nan), horizons=("1h",))
    assert "vwap_quote_24" not in out.columns
    assert any("vwap_quote_24 skipped" in n and "quote_volume" in n for n in out.attrs["notes"])
    with_quote = build_features(k.assign(quote_volume=k["volume"] * k["close"]), horizons=("1h",))
    assert with_quote["vwap_quote_24"].notna().all() and (with_quote["vwap_quote_24"] > 0).all()


def test_without_btc_cross_asset_features_are_skipped() -> None:
    out = build_features(make_klines(("ETHUSDT",), n=300), horizons=("1h",))
    assert "corr_btc_168" not in out.columns
    assert any("cross-asset" in n for n in out.attrs["notes"])


def test_btc_beta_to_itself_is_one() -> None:
    out = build_features(make_klines(n=300), horizons=("1h",))
    btc = out[out["symbol"] == "BTCUSDT"]
    np.testing.assert_allclose(btc["beta_btc_168"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(btc["corr_btc_168"], 1.0, rtol=1e-9)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda k: k.drop(columns=["close"]), "missing close"),
        (lambda k: pd.concat([k, k.iloc[:1]]), "duplicate"),
        (lambda k: k.assign(close="x"), "numeric"),
        (lambda k: k.iloc[:0], "no rows"),
    ],
)
def test_bad_input_is_a_clear_error(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest, match=message):
        build_features(mutate(make_klines(n=50)))


def test_unknown_target_kind_or_horizon() -> None:
    assert target_column("up", "1d") == "target_up_1d"
    with pytest.raises(InvalidRequest):
        target_column("price", "1h")
    with pytest.raises(InvalidRequest):
        target_column("logret", "1y")


def test_scale_free_columns_really_are() -> None:
    k = make_klines(n=400)
    scaled = k.copy()
    scaled[["open", "high", "low", "close"]] *= 1000.0
    scaled["volume"] *= 7.0
    a, b = build_features(k), build_features(scaled)
    feats = feature_columns(a)
    np.testing.assert_allclose(a[feats].to_numpy(), b[feats].to_numpy(), rtol=1e-6, atol=1e-8)
    assert not np.allclose(a["sma_20"], b["sma_20"])
    assert all(OUTPUTS[c].scale is Scale.FREE for c in feats if c in OUTPUTS)


def test_no_look_ahead_on_real_data(real_slice: pd.DataFrame) -> None:
    """Alter every row after t: every feature at or before t is unchanged (targets may change)."""
    rng = np.random.default_rng(11)
    times = np.sort(real_slice["open_time"].unique())
    t = times[len(times) * 2 // 3]
    after = real_slice["open_time"] > t
    altered = real_slice.copy()
    factor = rng.uniform(0.5, 1.5, int(after.sum()))
    for col in ("open", "high", "low", "close"):
        altered.loc[after, col] = altered.loc[after, col] * factor
    altered.loc[after, "volume"] = rng.uniform(1, 1e6, int(after.sum()))
    base, changed = build_features(real_slice), build_features(altered)
    feats = feature_columns(base)
    all_cols = [c for c in base.columns if not c.startswith("target_")]
    upto_b, upto_c = base[base["open_time"] <= t], changed[changed["open_time"] <= t]
    assert len(upto_b) > 1000
    pd.testing.assert_frame_equal(upto_b[all_cols], upto_c[all_cols], check_exact=True)
    # the alteration did reach the features after t, so the comparison above can fail
    later_b, later_c = base[base["open_time"] > t], changed[changed["open_time"] > t]
    assert not np.allclose(later_b[feats].to_numpy(), later_c[feats].to_numpy(), equal_nan=True)


def test_truncated_history_gives_the_same_features(real_slice: pd.DataFrame) -> None:
    times = np.sort(real_slice["open_time"].unique())
    t = times[len(times) // 2]
    full = build_features(real_slice)
    cut = build_features(real_slice[real_slice["open_time"] <= t])
    cols = [c for c in full.columns if not c.startswith("target_")]
    pd.testing.assert_frame_equal(
        full[full["open_time"] <= t][cols].reset_index(drop=True), cut[cols].reset_index(drop=True), check_exact=True
    )
