"""Model inputs on native bars: a small always-present core plus the batch-layer feature pipeline.

The core (prefix ``cf_``) is scale-free (returns, ratios, z-scores) and strictly causal: the value
at bar ``t`` uses bars ``<= t`` only. :func:`pipeline_features` adapts
``coincast.features.pipeline.build_features`` (the 40+ indicator batch layer) when it is present,
turning price-level columns into ratios to the close so one model can serve any price range.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from coincast.domain import Interval

_HOURS_PER_DAY = 24


def core_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Causal scale-free features per (symbol, open_ms) of sorted klines with ``open_ms``."""
    parts = []
    for _, g in bars.groupby("symbol", sort=False):
        close = g["close"].astype(float)
        r = np.log(close).diff()
        logv = np.log1p(g["volume"].astype(float))
        f = pd.DataFrame({"symbol": g["symbol"], "open_ms": g["open_ms"]})
        for lag in (1, 2, 3, 6, 12, 24):
            f[f"cf_ret_lag{lag}"] = r.shift(lag - 1)
        for w in (6, 24, 72, 168):
            f[f"cf_ret_sum{w}"] = r.rolling(w, min_periods=w).sum()
        for w in (24, 72, 168):
            f[f"cf_vol{w}"] = r.rolling(w, min_periods=w).std()
        for w in (24, 168):
            f[f"cf_close_sma{w}"] = close / close.rolling(w, min_periods=w).mean() - 1.0
        f["cf_range"] = np.log(g["high"].astype(float) / g["low"].astype(float))
        f["cf_body"] = np.log(close / g["open"].astype(float))
        f["cf_logvol_z"] = (logv - logv.rolling(168, min_periods=48).mean()) / logv.rolling(
            168, min_periods=48
        ).std().replace(0.0, np.nan)
        gain = r.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
        loss = (-r).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
        f["cf_rsi14"] = 100.0 * gain / (gain + loss).replace(0.0, np.nan)  # = 100 - 100 / (1 + RS)
        ts = pd.to_datetime(g["open_ms"], unit="ms", utc=True)
        hour = ts.dt.hour.to_numpy(float)
        dow = ts.dt.day_of_week.to_numpy(float)
        f["cf_hour_sin"] = np.sin(2 * np.pi * hour / _HOURS_PER_DAY)
        f["cf_hour_cos"] = np.cos(2 * np.pi * hour / _HOURS_PER_DAY)
        f["cf_dow_sin"] = np.sin(2 * np.pi * dow / 7)
        f["cf_dow_cos"] = np.cos(2 * np.pi * dow / 7)
        parts.append(f)
    out = pd.concat(parts, ignore_index=True)
    num = out.columns.difference(["symbol", "open_ms"])
    out[num] = out[num].replace([np.inf, -np.inf], np.nan)
    return out


def pipeline_available() -> bool:
    """True when the batch-layer feature pipeline can be imported."""
    try:
        mod = importlib.import_module("coincast.features.pipeline")
    except ImportError:
        return False
    return hasattr(mod, "build_features") and hasattr(mod, "feature_columns")


def pipeline_features(bars: pd.DataFrame, horizon: Interval) -> pd.DataFrame:
    """Batch-layer indicators keyed by (symbol, open_ms), targets dropped, levels made ratios.

    A column is treated as a price level (and divided by the close, minus one) when over the
    *first* 500 bars of each symbol it stays within a factor two of the close: a decision taken on
    the oldest data only, which precedes every test window.
    """
    mod = importlib.import_module("coincast.features.pipeline")
    klines = bars.drop(columns="open_ms").copy()
    klines["open_time"] = pd.to_datetime(bars["open_ms"], unit="ms", utc=True)
    built = mod.build_features(klines, horizons=(horizon.value,))
    cols = [c for c in mod.feature_columns(built) if not str(c).startswith("target")]
    data: dict[str, pd.Series] = {
        "symbol": built["symbol"].astype(str),
        "open_ms": pd.to_datetime(built["open_time"], utc=True).astype("datetime64[ms, UTC]").astype("int64"),
    }
    close = built["close"].astype(float) if "close" in built else None
    head = built.groupby("symbol", sort=False).head(500).index
    for c in cols:
        col = pd.to_numeric(built[c], errors="coerce").astype(float)
        if close is not None and _is_price_level(col.loc[head], close.loc[head]):
            col = col / close - 1.0
        data[f"pf_{c}"] = col
    out = pd.DataFrame(data)
    num = out.columns.difference(["symbol", "open_ms"])
    out[num] = out[num].replace([np.inf, -np.inf], np.nan)
    return out


def _is_price_level(col: pd.Series, close: pd.Series) -> bool:
    ratio = (col / close).dropna()
    return bool(len(ratio) > 0 and ratio.between(0.5, 2.0).mean() > 0.99)
