"""Indicators TA-Lib does not have, written once here.

Every function is causal (the value at row t uses rows <= t only) and returns NaN during its
warm-up, which the registry states. Rolling sums go through pandas' compensated rolling kernels
rather than cumulative sums, whose rounding error grows with the length of the history.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import talib

from coincast.features.bars import F64


def _roll(x: F64, window: int) -> pd.core.window.rolling.Rolling:
    return pd.Series(x, copy=False).rolling(window, min_periods=window)


def _np(s: pd.Series) -> F64:
    return np.ascontiguousarray(s.to_numpy(dtype=np.float64))


def safe_ratio(num: F64, den: F64) -> F64:
    """num / den with NaN (not inf, not 0) where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return out


def rolling_max(x: F64, window: int) -> F64:
    return _np(_roll(x, window).max())


def rolling_min(x: F64, window: int) -> F64:
    return _np(_roll(x, window).min())


def log_returns(close: F64) -> F64:
    """One-step log returns; NaN at row 0."""
    out = np.full_like(close, np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def donchian(high: F64, low: F64, window: int) -> tuple[F64, F64, F64]:
    """Donchian channel: highest high, lowest low and their midpoint over ``window`` rows."""
    upper, lower = rolling_max(high, window), rolling_min(low, window)
    return upper, lower, (upper + lower) / 2.0


def ichimoku(high: F64, low: F64, tenkan: int, kijun: int, senkou: int) -> tuple[F64, F64, F64, F64]:
    """Ichimoku tenkan, kijun and the two senkou spans as known at row t.

    The senkou spans are plotted ``kijun`` rows ahead, so the value at row t is the one computed
    at t - kijun (causal). The chikou span (close plotted ``kijun`` rows back) would put a future
    close at row t, so it is deliberately not produced.
    """
    tenkan_line = (rolling_max(high, tenkan) + rolling_min(low, tenkan)) / 2.0
    kijun_line = (rolling_max(high, kijun) + rolling_min(low, kijun)) / 2.0
    span_a = _shift((tenkan_line + kijun_line) / 2.0, kijun)
    span_b = _shift((rolling_max(high, senkou) + rolling_min(low, senkou)) / 2.0, kijun)
    return tenkan_line, kijun_line, span_a, span_b


def _shift(x: F64, n: int) -> F64:
    out = np.full_like(x, np.nan)
    if n < x.shape[0]:
        out[n:] = x[: x.shape[0] - n]
    return out


def keltner(high: F64, low: F64, close: F64, window: int, atr_window: int, mult: float) -> tuple[F64, F64, F64]:
    """Keltner channel: EMA(close, window) ± mult × ATR(atr_window) (TA-Lib EMA and ATR)."""
    middle = talib.EMA(close, timeperiod=window)
    atr = talib.ATR(high, low, close, timeperiod=atr_window)
    return middle + mult * atr, middle, middle - mult * atr


def supertrend(high: F64, low: F64, close: F64, window: int, mult: float) -> tuple[F64, F64]:
    """SuperTrend line and direction (+1 up, -1 down) on TA-Lib's Wilder ATR.

    Written as a loop because each band depends on the previous final band (a recursion that
    vectorised libraries do not express); one pass over plain floats, O(n).
    """
    atr = talib.ATR(high, low, close, timeperiod=window)
    hl2 = (high + low) / 2.0
    basic_up = (hl2 + mult * atr).tolist()
    basic_dn = (hl2 - mult * atr).tolist()
    closes = close.tolist()
    n = len(closes)
    line = [math.nan] * n
    direction = [math.nan] * n
    start = next((i for i in range(n) if not math.isnan(basic_up[i])), n)
    if start < n:
        final_up, final_dn = basic_up[start], basic_dn[start]
        trend = 1.0 if closes[start] > hl2[start] else -1.0
        line[start], direction[start] = (final_dn if trend > 0 else final_up), trend
        for i in range(start + 1, n):
            prev_close = closes[i - 1]
            final_up = basic_up[i] if basic_up[i] < final_up or prev_close > final_up else final_up
            final_dn = basic_dn[i] if basic_dn[i] > final_dn or prev_close < final_dn else final_dn
            if trend < 0 and closes[i] > final_up:
                trend = 1.0
            elif trend > 0 and closes[i] < final_dn:
                trend = -1.0
            line[i] = final_dn if trend > 0 else final_up
            direction[i] = trend
    return np.asarray(line, dtype=np.float64), np.asarray(direction, dtype=np.float64)


def realized_vol(close: F64, window: int) -> F64:
    """sqrt(sum of squared one-step log returns over ``window`` rows), not annualised."""
    r = log_returns(close)
    return _np(np.sqrt(_roll(r * r, window).sum()))


def parkinson(high: F64, low: F64, window: int) -> F64:
    """Parkinson (1980) per-bar volatility: sqrt(mean(ln(H/L)^2) / (4 ln 2)) over ``window`` rows."""
    hl = np.log(high / low)
    return _np(np.sqrt(_roll(hl * hl, window).mean() / (4.0 * math.log(2.0))))


def garman_klass(open_: F64, high: F64, low: F64, close: F64, window: int) -> F64:
    """Garman-Klass (1980) per-bar volatility: sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))."""
    hl = np.log(high / low)
    co = np.log(close / open_)
    term = 0.5 * hl * hl - (2.0 * math.log(2.0) - 1.0) * co * co
    return _np(np.sqrt(_roll(term, window).mean()))


def rolling_vwap(high: F64, low: F64, close: F64, volume: F64, window: int) -> F64:
    """Volume-weighted typical price (H+L+C)/3 over ``window`` rows; NaN when no volume traded."""
    typical = (high + low + close) / 3.0
    return safe_ratio(_np(_roll(typical * volume, window).sum()), _np(_roll(volume, window).sum()))


def rolling_ratio(num: F64, den: F64, window: int) -> F64:
    """sum(num) / sum(den) over ``window`` rows; NaN when the denominator sums to 0."""
    return safe_ratio(_np(_roll(num, window).sum()), _np(_roll(den, window).sum()))


def chaikin_money_flow(high: F64, low: F64, close: F64, volume: F64, window: int) -> F64:
    """CMF: sum(money-flow multiplier × volume) / sum(volume); the multiplier is 0 when H == L."""
    span = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        mfm = np.where(span > 0, ((close - low) - (high - close)) / span, 0.0)
    return rolling_ratio(mfm * volume, volume, window)


def zscore(x: F64, window: int) -> F64:
    """(x - rolling mean) / rolling sample std over ``window`` rows; NaN when the std is 0."""
    roll = _roll(x, window)
    return safe_ratio(x - _np(roll.mean()), _np(roll.std(ddof=1)))
