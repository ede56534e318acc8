"""Probabilistic scores: pinball loss at the bands' quantiles and a calibration table.

Every forecast carries central bands at :data:`coincast.train.base.BAND_LEVELS` (columns
``lower_50``/``upper_50`` … ``lower_95``/``upper_95``), all from the model's own conformal pool.
A band at level ``L`` gives the quantiles ``(1 - L) / 2`` (lower) and ``(1 + L) / 2`` (upper).

* ``pinball_pct``: the mean pinball (quantile) loss over those 8 quantiles, with prices expressed
  in percent of the origin price so that coins of any price level average together; lower is
  better, and persistence's own bands give the reference on the same rows;
* ``coverage_50`` … ``coverage_95``: the observed share of actual prices inside each band, to
  read against its nominal level (the calibration table).

Prediction files without the band columns fall back to the main ``lower``/``upper`` interval at
its stated ``level``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from coincast.train.base import BAND_LEVELS, band_columns

PROBABILISTIC_NAMES = ("pinball_pct", *(f"coverage_{band_columns(b)[0].removeprefix('lower_')}" for b in BAND_LEVELS))


def pinball_loss(actual: np.ndarray, quantile: np.ndarray, tau: float) -> float:
    """Mean pinball loss of the ``tau`` quantile forecasts: ``max(tau * u, (tau - 1) * u)``, ``u = y - q``."""
    u = actual - quantile
    return float(np.mean(np.maximum(tau * u, (tau - 1.0) * u)))


def _bands(g: pd.DataFrame) -> list[tuple[float, str, str]]:
    found = [(b, *band_columns(b)) for b in BAND_LEVELS if set(band_columns(b)) <= set(g.columns)]
    if found:
        return found
    level = float(g["level"].iloc[0]) if "level" in g.columns and len(g) else float("nan")
    return [(level, "lower", "upper")] if 0 < level < 1 else []


def probabilistic_scores(g: pd.DataFrame) -> dict[str, float | None]:
    """:data:`PROBABILISTIC_NAMES` for one group whose ``actual_price`` is known on every row."""
    out: dict[str, float | None] = {k: None for k in PROBABILISTIC_NAMES}
    actual = g["actual_price"].to_numpy(float)
    scale = 100.0 / g["origin_price"].to_numpy(float)
    losses: list[float] = []
    for level, lo_col, hi_col in _bands(g):
        lo, hi = g[lo_col].to_numpy(float), g[hi_col].to_numpy(float)
        key = f"coverage_{band_columns(level)[0].removeprefix('lower_')}"
        if key in out and len(g):
            out[key] = float(np.mean((lo <= actual) & (actual <= hi)))
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            y = actual[ok] * scale[ok]
            losses.append(pinball_loss(y, lo[ok] * scale[ok], (1.0 - level) / 2.0))
            losses.append(pinball_loss(y, hi[ok] * scale[ok], (1.0 + level) / 2.0))
    if losses:
        out["pinball_pct"] = float(np.mean(losses))
    return out
