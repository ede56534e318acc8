"""Klines -> per-symbol *horizon frames*: one row per forecast origin, spaced one horizon apart.

A horizon of ``1h`` on hourly klines uses every bar as an origin; ``1d`` on hourly klines uses the
bars that close a UTC day (open 23:00) and forecasts the close 24 h later, so ``origin_time`` and
``target_time`` are always open times of real bars of the input file. Gaps in the input leave the
affected targets unknown (NaN); nothing is filled in.

Features are computed on the native bars (strictly from past and current bars) and then sampled
at the origins, so computing them once on the whole file equals recomputing them on any prefix.
On hourly bars at 1h and 1d the frame also has the realised-volatility inputs ``vol_*`` and
``target_rv``, the realised variance of the target horizon (see
:mod:`coincast.train.volatility`); like ``target`` it is only ever read where the target time
was visible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from coincast.domain import Interval, InvalidRequest
from coincast.train.features import core_features
from coincast.train.volatility import HAR_WINDOWS, HOUR_MS, vol_columns

KLINE_COLUMNS = ("symbol", "open_time", "open", "high", "low", "close", "volume")
BASE_COLUMNS = ("symbol", "open_ms", "close", "high_h", "low_h", "volume_h", "target")

FeatureFn = Callable[[pd.DataFrame, Interval], pd.DataFrame]


def check_klines(klines: pd.DataFrame) -> pd.DataFrame:
    """Validate the kline schema and return it sorted with an integer ``open_ms`` column.

    Raises:
        InvalidRequest: naming the missing columns.
    """
    missing = [c for c in KLINE_COLUMNS if c not in klines.columns]
    if missing:
        raise InvalidRequest(f"klines lack columns {missing}; expected at least {list(KLINE_COLUMNS)}")
    out = klines.loc[:, list(KLINE_COLUMNS)].copy()
    out["symbol"] = out["symbol"].astype(str)
    out["open_ms"] = to_open_ms(out["open_time"])
    out = out.drop_duplicates(["symbol", "open_ms"], keep="last")
    return out.sort_values(["symbol", "open_ms"], kind="stable").reset_index(drop=True)


def to_open_ms(open_time: pd.Series) -> pd.Series:
    """Open times (timestamps, ISO strings or Binance integer milliseconds) as int64 ms UTC."""
    if pd.api.types.is_integer_dtype(open_time):
        return open_time.astype("int64")  # Binance milliseconds, not pandas' default nanoseconds
    ts = pd.to_datetime(open_time, utc=True)
    return ts.astype("datetime64[ms, UTC]").astype("int64")


def native_interval_ms(klines: pd.DataFrame) -> int:
    """The bar length of the input (the most common spacing of open times), in ms."""
    diffs = klines.groupby("symbol", sort=False)["open_ms"].diff().dropna()
    if diffs.empty:
        raise InvalidRequest("klines need at least two bars per symbol")
    return int(diffs.mode().iloc[0])


def horizon_frames(
    klines: pd.DataFrame,
    horizon: Interval,
    *,
    extra_features: FeatureFn | None = None,
) -> dict[str, pd.DataFrame]:
    """Build one horizon frame per symbol (see :mod:`coincast.train.base` for the columns).

    Args:
        klines: bars of one interval for one or more symbols (schema of ``klines_1h.parquet``).
        horizon: forecast horizon; a whole multiple of the input's bar length.
        extra_features: optional function ``(klines, horizon) -> frame`` keyed by ``symbol`` and
            ``open_ms`` adding causal feature columns (the batch-layer feature pipeline).

    Raises:
        InvalidRequest: horizon shorter than, or not a multiple of, the bar length.
    """
    bars = check_klines(klines)
    step_ms = native_interval_ms(bars)
    if horizon.ms < step_ms or horizon.ms % step_ms:
        raise InvalidRequest(
            f"horizon {horizon.value} is not a whole multiple of the data's bar length ({step_ms // 60_000} min)"
        )
    k = horizon.ms // step_ms
    feats = core_features(bars)
    if extra_features is not None:
        extra = extra_features(bars, horizon)
        dup = [c for c in extra.columns if c in feats.columns and c not in ("symbol", "open_ms")]
        feats = feats.merge(extra.drop(columns=dup), on=["symbol", "open_ms"], how="left")
    frames: dict[str, pd.DataFrame] = {}
    for symbol, g in bars.groupby("symbol", sort=True):
        g = g.reset_index(drop=True)
        agg = pd.DataFrame(
            {
                "symbol": g["symbol"],
                "open_ms": g["open_ms"],
                "close": g["close"].astype(float),
                "high_h": g["high"].astype(float).rolling(k, min_periods=1).max(),
                "low_h": g["low"].astype(float).rolling(k, min_periods=1).min(),
                "volume_h": g["volume"].astype(float).rolling(k, min_periods=1).sum(),
            }
        )
        aligned = agg[(agg["open_ms"] + step_ms) % horizon.ms == 0].copy()
        close_at = pd.Series(g["close"].to_numpy(float), index=g["open_ms"].to_numpy())
        future = close_at.reindex(aligned["open_ms"].to_numpy() + horizon.ms).to_numpy()
        aligned["target"] = np.log(future / aligned["close"].to_numpy())
        f = feats[feats["symbol"] == symbol].drop(columns="symbol")
        frame = aligned.merge(f, on="open_ms", how="left")
        frame = add_horizon_features(frame, horizon)
        if step_ms == HOUR_MS and horizon in HAR_WINDOWS:
            frame = frame.merge(vol_columns(g, horizon), on="open_ms", how="left")
        frames[str(symbol)] = frame.reset_index(drop=True)
    return frames


def add_horizon_features(frame: pd.DataFrame, horizon: Interval) -> pd.DataFrame:
    """Features on the horizon grid itself: lagged horizon returns, range, EWMA volatility."""
    out = frame.copy()
    close = out["close"].to_numpy(float)
    r = np.full(close.shape, np.nan)
    r[1:] = np.log(close[1:] / close[:-1])
    # A gap in the grid makes the previous row not one horizon back: that return is unknown.
    gap = np.diff(out["open_ms"].to_numpy(), prepend=out["open_ms"].iloc[0] - horizon.ms) != horizon.ms
    r[gap] = np.nan
    out["h_ret_1"] = r
    for lag in (2, 3, 5):
        out[f"h_ret_{lag}"] = out["h_ret_1"].shift(lag - 1)
    out["h_range"] = np.log(out["high_h"] / out["low_h"])
    out["h_vol"] = ewma_volatility(r)
    out["h_logvol_z"] = _zscore(np.log1p(out["volume_h"]), 30)
    return out


def ewma_volatility(returns: np.ndarray, lam: float = 0.94, warmup: int = 20) -> np.ndarray:
    """RiskMetrics EWMA standard deviation of log returns, using returns up to and including t.

    Causal by construction (a left-to-right recursion); NaN returns are skipped. The seed is the
    mean square of the first ``warmup`` valid returns, so values before that are NaN.
    """
    r2 = np.square(np.asarray(returns, dtype=float))
    out = np.full(r2.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(r2))
    if valid.size < warmup:
        return out
    seed_end = valid[warmup - 1]
    var = float(np.mean(r2[valid[:warmup]]))
    out[seed_end] = var
    for i in range(seed_end + 1, r2.shape[0]):
        if np.isfinite(r2[i]):
            var = lam * var + (1.0 - lam) * r2[i]
        out[i] = var
    return np.sqrt(out)


def _zscore(s: pd.Series, window: int) -> pd.Series:
    mean = s.rolling(window, min_periods=window // 2).mean()
    std = s.rolling(window, min_periods=window // 2).std()
    return (s - mean) / std.replace(0.0, np.nan)


def feature_names(frame: pd.DataFrame) -> list[str]:
    """Model input columns of a horizon frame: everything but identifiers, raw levels and target."""
    skip = {*BASE_COLUMNS}
    # vol_* feed the volatility model behind every forecaster's sigma, not the return models.
    return [c for c in frame.columns if c not in skip and not c.startswith(("target", "vol_"))]
