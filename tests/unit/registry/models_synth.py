"""Synthetic klines for the model tests: a seeded random walk (optionally with drift)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_klines(
    n: int = 400,
    *,
    step_ms: int = 3_600_000,
    seed: int = 0,
    drift: float = 0.0,
    vol: float = 0.01,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    start_ms: int = 1_700_000_000_000 // 86_400_000 * 86_400_000,
) -> pd.DataFrame:
    """``n`` bars per symbol in the schema of ``klines_1h.parquet`` (the first columns of it)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, sym in enumerate(symbols):
        r = drift + vol * rng.standard_normal(n)
        close = (100.0 + 50 * i) * np.exp(np.cumsum(r))
        open_ = np.r_[close[0], close[:-1]]
        spread = np.abs(rng.normal(0, vol / 2, n))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "open_time": pd.to_datetime(start_ms + step_ms * np.arange(n), unit="ms", utc=True),
                    "open": open_,
                    "high": np.maximum(open_, close) * (1 + spread),
                    "low": np.minimum(open_, close) * (1 - spread),
                    "close": close,
                    "volume": rng.uniform(1.0, 10.0, n),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
