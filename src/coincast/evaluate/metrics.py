"""Forecast scores, each next to the persistence (random-walk) forecast on the same origins.

All metrics are computed from a predictions table alone (columns of
:data:`coincast.evaluate.walk_forward.PREDICTION_COLUMNS`), so anyone can recompute a report:

* ``mae``, ``rmse``: price errors in quote currency; ``mape`` in percent of the actual price;
* ``mase``: ``mae`` divided by the MAE of persistence (``predicted = origin_price``) on the same
  rows; below 1 beats the random walk;
* ``r2_returns``: R² of the forecast log return ``log(predicted/origin)`` against the realised log
  return ``log(actual/origin)``, i.e. ``1 - SSE / sum((r - mean(r))^2)`` (never on price levels);
* ``directional_accuracy``: share of rows where ``prob_up > 0.5`` equals ``actual > origin``;
  ``da_ci_low``/``da_ci_high`` its 95 % Wilson interval;
* ``interval_coverage``: share with ``lower <= actual <= upper``; ``interval_nominal`` the stated
  level; ``interval_mean_width`` mean ``upper - lower`` in quote currency (and
  ``interval_mean_width_pct`` relative to the origin price, in percent);
* ``dm_pvalue``: two-sided Diebold-Mariano test of equal squared price error against persistence,
  with the Harvey-Leybourne-Newbold small-sample correction (null for persistence itself);
* ``n``: rows with a known actual price.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

METRIC_NAMES = (
    "mae",
    "rmse",
    "mape",
    "mase",
    "r2_returns",
    "directional_accuracy",
    "da_ci_low",
    "da_ci_high",
    "interval_coverage",
    "interval_nominal",
    "interval_mean_width",
    "dm_pvalue",
    "n",
)


def diebold_mariano(e_model: np.ndarray, e_ref: np.ndarray, horizon_steps: int = 1) -> float:
    """Two-sided p-value of equal mean squared error (DM with the HLN correction).

    Hand-written because neither scipy nor statsmodels ships the test; the long-run variance uses
    the ``horizon_steps - 1`` autocovariances of the loss differential, as Diebold-Mariano define.
    Returns NaN when the differential is identically zero or there are fewer than 3 rows.
    """
    d = np.square(e_model) - np.square(e_ref)
    n = d.shape[0]
    if n < 3:
        return float("nan")
    dc = d - d.mean()
    var = float(np.dot(dc, dc) / n)
    for k in range(1, horizon_steps):
        var += 2.0 * float(np.dot(dc[k:], dc[:-k]) / n)
    if not var > 0:
        return float("nan")
    dm = float(d.mean()) / math.sqrt(var / n)
    h = horizon_steps
    dm *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(2.0 * stats.t.sf(abs(dm), df=n - 1))


def score(group: pd.DataFrame) -> dict[str, float | int | None]:
    """The metrics of one (symbol, model, horizon) group of predictions."""
    g = group[np.isfinite(group["actual_price"].to_numpy(float))]
    n = len(g)
    nominal = float(g["level"].iloc[0]) if "level" in g and n else float("nan")
    if n == 0:
        return {k: (0 if k == "n" else None) for k in METRIC_NAMES}
    actual = g["actual_price"].to_numpy(float)
    pred = g["predicted_price"].to_numpy(float)
    origin = g["origin_price"].to_numpy(float)
    err, err_ref = pred - actual, origin - actual
    mae = float(np.mean(np.abs(err)))
    mae_ref = float(np.mean(np.abs(err_ref)))
    r_true, r_pred = np.log(actual / origin), np.log(pred / origin)
    sst = float(np.sum(np.square(r_true - r_true.mean())))
    hits = int(np.sum((g["prob_up"].to_numpy(float) > 0.5) == (actual > origin)))
    lo, hi = proportion_confint(hits, n, alpha=0.05, method="wilson")
    lower, upper = g["lower"].to_numpy(float), g["upper"].to_numpy(float)
    is_ref = bool(np.allclose(pred, origin, rtol=0, atol=0))
    out: dict[str, float | int | None] = {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(np.square(err)))),
        "mape": float(np.mean(np.abs(err) / np.abs(actual)) * 100.0),
        "mase": mae / mae_ref if mae_ref > 0 else None,
        "r2_returns": 1.0 - float(np.sum(np.square(r_true - r_pred))) / sst if sst > 0 else None,
        "directional_accuracy": hits / n,
        "da_ci_low": float(lo),
        "da_ci_high": float(hi),
        "interval_coverage": float(np.mean((lower <= actual) & (actual <= upper))),
        "interval_nominal": nominal,
        "interval_mean_width": float(np.mean(upper - lower)),
        "interval_mean_width_pct": float(np.mean((upper - lower) / origin) * 100.0),
        "dm_pvalue": None if is_ref else _none_if_nan(diebold_mariano(err, err_ref)),
        "n": n,
    }
    return {k: _none_if_nan(v) if isinstance(v, float) else v for k, v in out.items()}


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else x


def report_records(preds: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per (symbol, model, horizon): identifiers then :data:`METRIC_NAMES`."""
    records: list[dict[str, Any]] = []
    for (symbol, model, horizon), g in preds.groupby(["symbol", "model", "horizon"], sort=False):
        rec: dict[str, Any] = {"symbol": symbol, "model": model, "horizon": horizon}
        rec.update(score(g))
        records.append(rec)
    return records


def leaderboard(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per horizon and model: mean metrics over symbols, ranked by MASE (persistence = 1)."""
    df = pd.DataFrame(records)
    cols = [
        "mase",
        "mae",
        "rmse",
        "mape",
        "r2_returns",
        "directional_accuracy",
        "interval_coverage",
        "interval_nominal",
        "interval_mean_width_pct",
    ]
    num = df[["horizon", "model", *cols]].copy()
    num[cols] = num[cols].astype(float)
    agg = num.groupby(["horizon", "model"], sort=False)[cols].mean()
    agg["symbols"] = df.groupby(["horizon", "model"], sort=False)["symbol"].nunique()
    agg["beats_persistence"] = (
        df.assign(b=(df["mase"].astype(float) < 1.0) & (df["dm_pvalue"].astype(float) < 0.05))
        .groupby(["horizon", "model"], sort=False)["b"]
        .sum()
    )
    agg["n"] = df.groupby(["horizon", "model"], sort=False)["n"].sum()
    board = agg.reset_index()
    # Persistence on every row: its scores over the same symbols, for side-by-side reading.
    ref = board[board["model"] == "persistence"].set_index("horizon")
    for col in ("mape", "directional_accuracy", "interval_coverage"):
        board[f"{col}_persistence"] = board["horizon"].map(ref[col]) if len(ref) else np.nan
    return board.sort_values(["horizon", "mase"], kind="stable").reset_index(drop=True)
