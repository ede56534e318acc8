"""Model inputs beyond the raw indicators: returns, rolling statistics, ranges, calendar,
cross-asset (market factor) and scale-free versions of the price-level indicators.

Windows and lags are in rows (steps of the data's interval). Every column is causal; each
function also reports its warm-up (rows without a value at the start of a series).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from coincast.features import custom
from coincast.features.bars import F64, Bars
from coincast.features.registry import BY_NAME, OUTPUTS, Scale

LAGS: tuple[int, ...] = (1, 2, 3, 6, 12, 24, 48, 168)
WINDOWS: tuple[int, ...] = (24, 168)
CORR_WINDOW = 168
VOLUME_NORM_WINDOW = 24
ZSCORE_NORM_WINDOW = 168
RETURN_WARMUP = max(*LAGS, *WINDOWS)  # rows before every return feature has a value
RANGE_WARMUP = 23  # the 24-row means in range_features
_MS_HOUR = 3_600_000
_MS_DAY = 86_400_000


def _lagged_logret(close: F64, lag: int) -> F64:
    out = np.full_like(close, np.nan)
    if lag < close.shape[0]:
        out[lag:] = np.log(close[lag:] / close[:-lag])
    return out


def _np(s: pd.Series) -> F64:
    return np.ascontiguousarray(s.to_numpy(dtype=np.float64))


def return_features(bars: Bars) -> dict[str, F64]:
    """Log returns over :data:`LAGS`, rolling mean/std/skew of 1-step returns, return and price z-scores."""
    close = bars.close
    cols = {f"logret_{k}": _lagged_logret(close, k) for k in LAGS}
    r = pd.Series(cols["logret_1"], copy=False)
    for w in WINDOWS:
        roll = r.rolling(w, min_periods=w)
        mean, std = _np(roll.mean()), _np(roll.std(ddof=1))
        cols[f"ret_mean_{w}"] = mean
        cols[f"ret_std_{w}"] = std
        cols[f"ret_skew_{w}"] = _np(roll.skew())
        cols[f"ret_z_{w}"] = custom.safe_ratio(cols["logret_1"] - mean, std)
        cols[f"close_z_{w}"] = custom.zscore(close, w)
    return cols


def range_features(bars: Bars) -> dict[str, F64]:
    """Candle shape relative to price, and the volume relative to its recent mean."""
    o, h, lo, c, v = bars.open, bars.high, bars.low, bars.close, bars.volume
    hl = (h - lo) / c
    cols = {
        "hl_range": hl,
        "oc_return": np.log(c / o),
        "upper_wick": (h - np.maximum(o, c)) / c,
        "lower_wick": (np.minimum(o, c) - lo) / c,
        # where the close sits in the bar's range; a bar without range (H == L) counts as mid-range
        "close_pos": np.where(h > lo, custom.safe_ratio(c - lo, h - lo), 0.5),
        "hl_range_mean_24": _np(pd.Series(hl, copy=False).rolling(24, min_periods=24).mean()),
        "volume_rel_24": custom.safe_ratio(v, _np(pd.Series(v, copy=False).rolling(24, min_periods=24).mean())),
    }
    return cols


def calendar_features(open_ms: npt.NDArray[np.int64]) -> dict[str, F64]:
    """UTC hour of day and day of week (Monday = 0), raw and as sine/cosine pairs."""
    hour = ((open_ms // _MS_HOUR) % 24).astype(np.float64)
    dow = ((open_ms // _MS_DAY + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    return {
        "hour": hour,
        "day_of_week": dow,
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "dow_sin": np.sin(2 * np.pi * dow / 7),
        "dow_cos": np.cos(2 * np.pi * dow / 7),
    }


def cross_asset_features(close: F64, market_close: F64) -> tuple[dict[str, F64], int]:
    """Market factor (BTC) return and volatility, rolling correlation and beta to it.

    ``market_close`` is the market's close on this symbol's rows (NaN where the market has no
    candle), so both return series span the same time steps. The warm-up counts from the first
    row with a market close.
    """
    r = pd.Series(_lagged_logret(close, 1), copy=False)
    rm = pd.Series(_lagged_logret(market_close, 1), copy=False)
    roll_m = rm.rolling(CORR_WINDOW, min_periods=CORR_WINDOW)
    cols = {
        "btc_logret_1": rm.to_numpy(dtype=np.float64),
        "btc_logret_24": _lagged_logret(market_close, 24),
        "btc_vol_24": _np(rm.rolling(24, min_periods=24).std(ddof=1)),
        "corr_btc_168": _np(r.rolling(CORR_WINDOW, min_periods=CORR_WINDOW).corr(rm)),
        "beta_btc_168": custom.safe_ratio(
            _np(r.rolling(CORR_WINDOW, min_periods=CORR_WINDOW).cov(rm, ddof=1)), _np(roll_m.var(ddof=1))
        ),
        "rel_logret_24": _lagged_logret(close, 24) - _lagged_logret(market_close, 24),
    }
    valid = np.flatnonzero(~np.isnan(market_close))
    first = int(valid[0]) if valid.size else close.shape[0]
    return cols, first + CORR_WINDOW


def normalised_column(name: str, scale: Scale) -> str | None:
    """Name of the scale-free version of an indicator output (None if it is already scale-free)."""
    if scale is Scale.FREE:
        return None
    return f"{name}_z" if scale is Scale.ZSCORE else f"{name}_rel"


def normalised_indicators(values: dict[str, F64], bars: Bars) -> dict[str, F64]:
    """Scale-free versions of price-, volume- and level-valued indicator outputs.

    Their warm-up is :func:`normalisation_warmup`.
    """
    close = bars.close
    mean_volume = _np(
        pd.Series(bars.volume, copy=False).rolling(VOLUME_NORM_WINDOW, min_periods=VOLUME_NORM_WINDOW).mean()
    )
    out: dict[str, F64] = {}
    for col, arr in values.items():
        scale = OUTPUTS[col].scale
        name = normalised_column(col, scale)
        if name is None:
            continue
        if scale is Scale.PRICE:
            out[name] = arr / close - 1.0
        elif scale is Scale.PRICE_DELTA:
            out[name] = arr / close
        elif scale is Scale.VOLUME_DELTA:
            out[name] = custom.safe_ratio(arr, mean_volume)
        else:
            out[name] = custom.zscore(arr, ZSCORE_NORM_WINDOW)
    return out


def normalisation_warmup(indicator_names: tuple[str, ...]) -> int:
    """The largest warm-up of any indicator output or of its scale-free version."""
    worst = 0
    for name in indicator_names:
        ind = BY_NAME[name]
        for out in ind.outputs:
            if out.scale is Scale.VOLUME_DELTA:  # divided by a rolling mean of its own window
                worst = max(worst, ind.warmup, VOLUME_NORM_WINDOW - 1)
            elif out.scale is Scale.ZSCORE:  # a rolling z-score of the indicator's values
                worst = max(worst, ind.warmup + ZSCORE_NORM_WINDOW - 1)
            else:
                worst = max(worst, ind.warmup)
    return worst
