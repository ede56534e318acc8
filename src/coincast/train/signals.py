"""Technical signals of the moment, reported next to every forecast (trend, momentum, RSI zone).

Read from the causal core features of a horizon frame's row (see :mod:`coincast.train.features`),
so they describe the market as known at the forecast origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TREND_BAND = 0.005  # |close / SMA(168) - 1| below 0.5 % is "flat"


@dataclass(frozen=True, slots=True)
class Signals:
    """``trend`` up/down/flat (close vs its 168-bar mean), ``momentum`` up/down (24-bar return),
    ``rsi`` RSI(14) on native bars and its ``zone`` overbought (>70) / oversold (<30) / neutral."""

    trend: str
    momentum: str
    rsi: float | None
    zone: str


def technical_signals(row: pd.Series) -> Signals:
    """Signals from one row of a horizon frame (e.g. ``history.iloc[-1]``)."""
    sma = float(row.get("cf_close_sma168", np.nan))
    mom = float(row.get("cf_ret_sum24", np.nan))
    rsi = float(row.get("cf_rsi14", np.nan))
    trend = "unknown"
    if np.isfinite(sma):
        trend = "up" if sma > TREND_BAND else "down" if sma < -TREND_BAND else "flat"
    momentum = "unknown" if not np.isfinite(mom) else "up" if mom > 0 else "down"
    if not np.isfinite(rsi):
        return Signals(trend, momentum, None, "unknown")
    zone = "overbought" if rsi > 70 else "oversold" if rsi < 30 else "neutral"
    return Signals(trend, momentum, rsi, zone)
