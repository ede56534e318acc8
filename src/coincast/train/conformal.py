"""Split conformal intervals with an adaptive residual pool (past residuals only).

Residuals are *normalised*: ``e = (r - mu) / sigma`` where ``r`` is the realised forward log
return, ``mu`` the model's forecast and ``sigma`` the volatility known at the origin. The pool
starts as the residuals of a calibration block held out of the fit, and then slides forward: a
forecast's residual joins the pool only once its target time has passed, so the interval at
origin ``t`` uses residuals realised at or before ``t``. The half-width at level ``L`` over a pool
of ``m`` residuals is the ``ceil((m + 1) L) / m`` empirical quantile of ``|e|`` (the finite-sample
split-conformal quantile); it is infinite when the pool is too small for the level.

Why hand-written: the libraries (MAPIE, crepes) wrap scikit-learn estimators and refit per call;
here every model family, including the torch ones, shares one cheap causal pool update.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from coincast.train.base import F64, I64


def conformal_quantile(abs_resid: np.ndarray, level: float) -> float:
    """Finite-sample split-conformal quantile of ``|e|`` at coverage ``level``."""
    m = int(abs_resid.shape[0])
    if m == 0:
        return float("inf")
    k = int(np.ceil((m + 1) * level))
    if k > m:
        return float("inf")
    return float(np.partition(abs_resid, k - 1)[k - 1])


def conformal_quantiles(abs_resid: np.ndarray, levels: Sequence[float]) -> list[float]:
    """:func:`conformal_quantile` at several levels from one sort of the pool."""
    m = int(abs_resid.shape[0])
    ranked = np.sort(abs_resid)
    out: list[float] = []
    for level in levels:
        k = int(np.ceil((m + 1) * level))
        out.append(float(ranked[k - 1]) if 0 < k <= m else float("inf"))
    return out


def rolling_conformal(
    *,
    origin_ms: I64,
    target_ms: I64,
    mu: F64,
    sigma: F64,
    realized: F64,
    wanted: np.ndarray,
    initial: F64,
    level: float,
    band_levels: Sequence[float] = (),
) -> tuple[F64, F64, F64]:
    """Half-widths (in sigma units) and empirical P(up) for the ``wanted`` rows.

    Args:
        origin_ms: origins in increasing order (all rows after the calibration block).
        target_ms: target time of each origin.
        mu, sigma: forecast mean and volatility per origin (log-return units).
        realized: realised forward log return per origin (NaN when unknown in the data).
        wanted: boolean mask of the rows to answer for.
        initial: calibration residuals (signed, normalised), oldest first.
        level: nominal coverage in (0, 1).
        band_levels: further coverages whose half-widths come from the same pool at each origin
            (the calibration table's 50/80/90/95 % bands).

    Returns:
        ``(q, p_up, q_bands)`` for the wanted rows: ``lower/upper = mu -/+ q * sigma``,
        ``p_up = mean(mu + sigma * e > 0)`` over the pool at that origin, and ``q_bands`` of shape
        ``(rows, len(band_levels))``, the half-widths at ``band_levels``.
    """
    pool: deque[float] = deque(initial.tolist(), maxlen=max(int(initial.shape[0]), 1))
    resid = (realized - mu) / sigma
    order = np.argsort(target_ms, kind="stable")
    ptr = 0
    levels = [level, *band_levels]
    qs: list[list[float]] = []
    ps: list[float] = []
    for i in np.flatnonzero(wanted):
        while ptr < order.shape[0] and target_ms[order[ptr]] <= origin_ms[i]:
            e = resid[order[ptr]]
            if np.isfinite(e):
                pool.append(float(e))
            ptr += 1
        arr = np.fromiter(pool, dtype=float, count=len(pool))
        qs.append(conformal_quantiles(np.abs(arr), levels))
        ps.append(float(np.mean(mu[i] + sigma[i] * arr > 0.0)) if arr.size else 0.5)
    q = np.asarray(qs, dtype=float).reshape(len(qs), len(levels))
    return q[:, 0], np.asarray(ps, dtype=float), q[:, 1:]
