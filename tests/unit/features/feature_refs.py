"""Independent reference implementations of indicators, written from their textbook formulas.

Loops and sliding windows on purpose: slow but obviously right, and sharing no code with
coincast.features. EMAs follow TA-Lib's convention (seeded with the SMA of the first n values).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

A = np.ndarray


def nan_like(x: A) -> A:
    return np.full(x.shape[0], np.nan)


def windows(x: A, n: int, fn) -> A:  # type: ignore[no-untyped-def]
    out = nan_like(x)
    out[n - 1 :] = fn(sliding_window_view(x, n), axis=1)
    return out


def sma(x: A, n: int) -> A:
    return windows(x, n, np.mean)


def ema(x: A, n: int, start: int | None = None) -> A:
    """TA-Lib EMA: seeded at index start+n-1 with the mean of x[start:start+n] (start = first non-NaN)."""
    if start is None:
        start = int(np.flatnonzero(~np.isnan(x))[0])
    out = nan_like(x)
    k = 2.0 / (n + 1)
    out[start + n - 1] = np.mean(x[start : start + n])
    for i in range(start + n, x.shape[0]):
        out[i] = out[i - 1] + k * (x[i] - out[i - 1])
    return out


def wma(x: A, n: int) -> A:
    w = np.arange(1, n + 1, dtype=float)
    return windows(x, n, lambda v, axis: (v * w).sum(axis=axis) / w.sum())


def macd(x: A, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[A, A, A]:
    """TA-Lib aligns the fast EMA on the slow one: both start at index slow-1."""
    line = ema(x, fast, start=slow - fast) - ema(x, slow)
    sig = ema(line, signal)
    first = slow - 1 + signal - 1
    line[:first] = np.nan
    return line, sig, line - sig


def wilder(values: A, n: int, first: int) -> A:
    """Wilder smoothing: seeded with the mean of values[first:first+n] at index first+n-1."""
    out = nan_like(values)
    out[first + n - 1] = np.mean(values[first : first + n])
    for i in range(first + n, values.shape[0]):
        out[i] = (out[i - 1] * (n - 1) + values[i]) / n
    return out


def rsi(x: A, n: int = 14) -> A:
    d = np.diff(x, prepend=np.nan)
    gain = wilder(np.where(d > 0, d, 0.0), n, 1)
    loss = wilder(np.where(d < 0, -d, 0.0), n, 1)
    return 100.0 * gain / (gain + loss)


def true_range(h: A, lo: A, c: A) -> A:
    prev = np.concatenate([[np.nan], c[:-1]])
    return np.maximum.reduce([h - lo, np.abs(h - prev), np.abs(lo - prev)])


def atr(h: A, lo: A, c: A, n: int = 14) -> A:
    return wilder(true_range(h, lo, c), n, 1)


def bbands(x: A, n: int = 20, k: float = 2.0) -> tuple[A, A, A]:
    mid = sma(x, n)
    sd = windows(x, n, np.std)  # population std, as TA-Lib
    return mid + k * sd, mid, mid - k * sd


def rolling_max(x: A, n: int) -> A:
    return windows(x, n, np.max)


def rolling_min(x: A, n: int) -> A:
    return windows(x, n, np.min)


def shift(x: A, n: int) -> A:
    out = nan_like(x)
    out[n:] = x[:-n]
    return out


def logret(c: A) -> A:
    return np.log(c / shift(c, 1))


def rolling_sum(x: A, n: int) -> A:
    return windows(x, n, np.sum)


def supertrend(h: A, lo: A, c: A, n: int = 10, mult: float = 3.0) -> tuple[A, A]:
    """The usual published recursion (final bands ratchet until the close crosses them)."""
    a = atr(h, lo, c, n)
    mid = (h + lo) / 2
    up_b, dn_b = mid + mult * a, mid - mult * a
    line, direction = nan_like(c), nan_like(c)
    f_up = f_dn = math.nan
    trend = 0.0
    for i in range(c.shape[0]):
        if math.isnan(a[i]):
            continue
        if math.isnan(f_up):
            f_up, f_dn = up_b[i], dn_b[i]
            trend = 1.0 if c[i] > mid[i] else -1.0
        else:
            f_up = up_b[i] if (up_b[i] < f_up or c[i - 1] > f_up) else f_up
            f_dn = dn_b[i] if (dn_b[i] > f_dn or c[i - 1] < f_dn) else f_dn
            if trend == -1.0 and c[i] > f_up:
                trend = 1.0
            elif trend == 1.0 and c[i] < f_dn:
                trend = -1.0
        line[i] = f_dn if trend == 1.0 else f_up
        direction[i] = trend
    return line, direction
