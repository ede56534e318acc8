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
* ``dm_pvalue_mae`` / ``dm_pvalue_mse``: one-sided Diebold-Mariano p-values of "the model's mean
  loss is lower than persistence's", on the loss each backs: absolute price error (MAE, MASE) and
  squared price error (MSE, RMSE); HAC (Bartlett) variance over ``horizon - 1`` lags for
  overlapping forecasts and the Harvey-Leybourne-Newbold small-sample correction, Student t with
  ``n - 1`` degrees of freedom (null for persistence itself). A small p means significantly
  *better*; a model that is worse gets a p near 1, never a "win";
* the after-cost trading scores of the row's default strategy and of buy-and-hold
  (:mod:`coincast.evaluate.trading`) and the probabilistic scores (pinball loss, coverage at
  50/80/90/95 %: :mod:`coincast.evaluate.probabilistic`);
* ``n``: rows with a known actual price.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.sandwich_covariance import S_hac_simple

from coincast.backtest.engine import BacktestConfig
from coincast.evaluate.probabilistic import PROBABILISTIC_NAMES, probabilistic_scores
from coincast.evaluate.trading import TRADING_NAMES, trading_scores

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
    "dm_pvalue_mae",
    "dm_pvalue_mse",
    *TRADING_NAMES,
    *PROBABILISTIC_NAMES,
    "n",
)
SIGNIFICANCE = 0.05


def diebold_mariano(loss_model: np.ndarray, loss_ref: np.ndarray, horizon_steps: int = 1) -> float:
    """One-sided Diebold-Mariano p-value of H1: the model's mean loss is lower than the reference's.

    ``loss_*`` are per-forecast losses on the same rows (absolute errors to back MAE, squared
    errors to back MSE). The differential ``d = loss_ref - loss_model`` has its long-run variance
    estimated with Bartlett (Newey-West) weights over ``horizon_steps - 1`` lags (statsmodels'
    ``S_hac_simple``; always positive, unlike the rectangular window), the statistic gets the
    Harvey-Leybourne-Newbold small-sample factor and is compared with Student t, ``n - 1`` df.
    The test itself is hand-assembled because neither scipy nor statsmodels ships it.

    Returns NaN when the differential is identically zero or there are fewer than 3 rows.
    """
    d = np.asarray(loss_ref, dtype=float) - np.asarray(loss_model, dtype=float)
    n = d.shape[0]
    h = max(int(horizon_steps), 1)
    if n < 3:
        return float("nan")
    var = float(S_hac_simple(d - d.mean(), nlags=h - 1)[0, 0]) / n
    if not var > 0:
        return float("nan")
    dm = float(d.mean()) / math.sqrt(var / n)
    dm *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(stats.t.sf(dm, df=n - 1))


def horizon_steps(group: pd.DataFrame) -> int:
    """How many origins one forecast spans: ``horizon / spacing of origins`` (1: no overlap)."""
    o = group["origin_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    t = group["target_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    if o.shape[0] < 2:
        return 1
    spacing = float(np.median(np.diff(np.sort(o))))
    return max(1, round(float(np.median(t - o)) / spacing)) if spacing > 0 else 1


def score(group: pd.DataFrame, costs: BacktestConfig | None = None) -> dict[str, float | int | None]:
    """The metrics of one (symbol, model, horizon) group of predictions.

    ``costs`` is the default strategy traded for the after-cost scores (default: long/short on
    the forecast's sign at 10 bp fee + 5 bp slippage).
    """
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
    steps = horizon_steps(g)
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
        "dm_pvalue_mae": None if is_ref else diebold_mariano(np.abs(err), np.abs(err_ref), steps),
        "dm_pvalue_mse": None if is_ref else diebold_mariano(np.square(err), np.square(err_ref), steps),
        **trading_scores(g, costs),
        **probabilistic_scores(g),
        "n": n,
    }
    return {k: _none_if_nan(v) if isinstance(v, float) else v for k, v in out.items()}


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else x


def report_records(preds: pd.DataFrame, costs: BacktestConfig | None = None) -> list[dict[str, Any]]:
    """One record per (symbol, model, horizon): identifiers then :data:`METRIC_NAMES`."""
    records: list[dict[str, Any]] = []
    for (symbol, model, horizon), g in preds.groupby(["symbol", "model", "horizon"], sort=False):
        rec: dict[str, Any] = {"symbol": symbol, "model": model, "horizon": horizon}
        rec.update(score(g, costs))
        records.append(rec)
    return records


BOARD_MEANS = (
    "mase",
    "mae",
    "rmse",
    "mape",
    "r2_returns",
    "directional_accuracy",
    "interval_coverage",
    "interval_nominal",
    "interval_mean_width_pct",
    *TRADING_NAMES,
    *PROBABILISTIC_NAMES,
)


def leaderboard(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per horizon and model: mean metrics over symbols, ranked by MASE (persistence = 1).

    Counts over symbols: ``beats_persistence_mae`` / ``beats_persistence_mse`` (one-sided DM
    p < 0.05 on that loss: significantly *better*), ``trails_persistence_mae`` /
    ``trails_persistence_mse`` (the same test the other way: p > 0.95, significantly worse),
    ``beats_buy_and_hold`` and ``profitable_after_costs`` (the default strategy's total return
    after costs above buy-and-hold's, above zero).
    """
    df = pd.DataFrame(records)
    cols = [c for c in BOARD_MEANS if c in df.columns]
    keys = ["horizon", "model"]
    num = df[[*keys, *cols]].copy()
    num[cols] = num[cols].astype(float)
    by = num.groupby(keys, sort=False)
    agg = by[cols].mean()
    agg["symbols"] = df.groupby(keys, sort=False)["symbol"].nunique()
    flags = pd.DataFrame(index=df.index)
    for loss in ("mae", "mse"):
        p = df[f"dm_pvalue_{loss}"].astype(float)
        flags[f"beats_persistence_{loss}"] = p < SIGNIFICANCE
        flags[f"trails_persistence_{loss}"] = p > 1.0 - SIGNIFICANCE
    if "strategy_return" in df.columns:
        ret = df["strategy_return"].astype(float)
        flags["beats_buy_and_hold"] = ret > df["buy_and_hold_return"].astype(float)
        flags["profitable_after_costs"] = ret > 0
    counts = flags.groupby([df["horizon"], df["model"]], sort=False).sum()
    agg = agg.join(counts)
    agg["n"] = df.groupby(keys, sort=False)["n"].sum()
    board = agg.reset_index()
    # Persistence on every row: its scores over the same symbols, for side-by-side reading.
    ref = board[board["model"] == "persistence"].set_index("horizon")
    for col in ("mape", "directional_accuracy", "interval_coverage", "pinball_pct"):
        if col in board.columns:
            board[f"{col}_persistence"] = board["horizon"].map(ref[col]) if len(ref) else np.nan
    board["scope"] = np.where(board["model"].str.endswith("_global"), "global", "per-coin")
    return board.sort_values(["horizon", "mase"], kind="stable").reset_index(drop=True)
