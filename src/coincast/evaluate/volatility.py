"""Walk-forward evaluation of realised-volatility forecasts against the naive forecast.

The same protocol as the price models (:mod:`coincast.evaluate.walk_forward`): the test period
is cut into windows of ``retrain_every_ms``; the model of a window is fitted on the rows whose
target time is at or before the cut (and the hourly bars up to the cut) and forecasts each origin
of the window from the bars up to that origin only.

Scores per (symbol, model), on the realised variance ``y`` and the forecast ``f``:

* ``qlike``: mean ``y/f - log(y/f) - 1`` (Patton's robust loss; 0 is perfect, scale free);
* ``mse``: mean ``(y - f)^2``; ``mse_ratio`` and ``qlike_ratio`` over the naive forecast's
  (below 1 beats it);
* ``dm_pvalue_qlike`` / ``dm_pvalue_mse``: one-sided Diebold-Mariano p-values of "lower loss
  than naive" on that loss (null for naive itself);
* ``mz_r2``: R² of the Mincer-Zarnowitz regression of ``log y`` on ``log f``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coincast.domain import Interval, InvalidTimeRange
from coincast.evaluate.metrics import SIGNIFICANCE, diebold_mariano
from coincast.train.volatility import create_vol_model, vol_frame

VOL_PREDICTION_COLUMNS = ("symbol", "model", "horizon", "origin_time", "target_time", "predicted_variance",
                          "realised_variance", "window")


def hourly_bars(klines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per symbol: hourly bars with integer ``open_ms`` (the klines file's schema in)."""
    from coincast.train.frames import to_open_ms

    k = klines.assign(open_ms=to_open_ms(klines["open_time"]))
    return {str(s): g.sort_values("open_ms").reset_index(drop=True) for s, g in k.groupby("symbol", sort=True)}


def walk_vol(
    frame: pd.DataFrame, model: str, horizon: Interval, *, train_end_ms: int, test_end_ms: int, retrain_every_ms: int,
    seed: int = 0,
) -> pd.DataFrame:
    """Walk one volatility model forward over one symbol's vol frame (all hourly rows)."""
    h = horizon.ms
    rows_all = vol_frame(frame, horizon)
    om = rows_all["open_ms"].to_numpy()
    test = (om >= train_end_ms) & (om + h <= test_end_ms)
    if not test.any():
        raise InvalidTimeRange("no volatility forecast origins between --train-end and --test-end")
    hourly = rows_all if horizon == Interval.H1 else vol_frame(frame, Interval.H1)
    hom = hourly["open_ms"].to_numpy()
    last = int(om[test][-1])
    out: list[pd.DataFrame] = []
    cut, window = train_end_ms, 0
    while cut <= last:
        nxt = cut + retrain_every_ms
        train = rows_all[om <= cut].copy()
        train.loc[train["open_ms"].to_numpy() + h > cut, "target"] = np.nan
        m = create_vol_model(model, horizon, seed=seed + window).fit(train, hourly[hom <= cut])
        sel = test & (om >= cut) & (om < nxt)
        if sel.any():
            rows = rows_all[sel]
            pred = m.predict(rows, hourly[hom <= int(rows["open_ms"].max())])
            out.append(pd.DataFrame({
                "symbol": rows["symbol"].to_numpy(), "model": model, "horizon": horizon.value,
                "origin_time": pd.to_datetime(rows["open_ms"].to_numpy(), unit="ms", utc=True),
                "target_time": pd.to_datetime(rows["target_ms"].to_numpy(), unit="ms", utc=True),
                "predicted_variance": pred, "realised_variance": rows["target"].to_numpy(float), "window": window,
            }))
        cut, window = nxt, window + 1
    return pd.concat(out, ignore_index=True).loc[:, list(VOL_PREDICTION_COLUMNS)]


def evaluate_vol(
    klines: pd.DataFrame, models: Sequence[str], horizon: Interval, *, train_end_ms: int, test_end_ms: int,
    retrain_every_ms: int, seed: int = 0, progress: Callable[[str, str], None] | None = None,
) -> pd.DataFrame:
    """Every (symbol, model): predictions of the next horizon's realised variance; naive always first."""
    names = ["naive", *[m for m in models if m != "naive"]]
    for m in names:
        create_vol_model(m, horizon)  # unknown names fail before any work
    parts = []
    for symbol, bars in hourly_bars(klines).items():
        for m in names:
            parts.append(walk_vol(bars, m, horizon, train_end_ms=train_end_ms, test_end_ms=test_end_ms,
                                  retrain_every_ms=retrain_every_ms, seed=seed))
            if progress is not None:
                progress(symbol, m)
    return pd.concat(parts, ignore_index=True)


def _qlike(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    q: np.ndarray = y / f - np.log(y / f) - 1.0
    return q


def vol_records(preds: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per (symbol, model, horizon), each scored on the rows naive also has."""
    records: list[dict[str, Any]] = []
    ok = preds[np.isfinite(preds["realised_variance"]) & np.isfinite(preds["predicted_variance"])]
    for (symbol, horizon), g in ok.groupby(["symbol", "horizon"], sort=False):
        ref = g[g["model"] == "naive"].set_index("origin_time")["predicted_variance"]
        for model, gm in g.groupby("model", sort=False):
            gm = gm[gm["origin_time"].isin(ref.index)]
            y, f = gm["realised_variance"].to_numpy(float), gm["predicted_variance"].to_numpy(float)
            fr = ref.reindex(gm["origin_time"]).to_numpy(float)
            q, qr = _qlike(y, f), _qlike(y, fr)
            se, ser = (y - f) ** 2, (y - fr) ** 2
            ly, lf = np.log(y), np.log(f)
            c = np.corrcoef(ly, lf)[0, 1] if len(y) > 2 and np.std(lf) > 0 else np.nan
            is_ref = model == "naive"
            records.append({
                "symbol": symbol, "model": model, "horizon": horizon, "n": len(y),
                "qlike": float(q.mean()), "qlike_naive": float(qr.mean()), "qlike_ratio": float(q.mean() / qr.mean()),
                "mse": float(se.mean()), "mse_ratio": float(se.mean() / ser.mean()),
                "dm_pvalue_qlike": None if is_ref else _finite(diebold_mariano(q, qr)),
                "dm_pvalue_mse": None if is_ref else _finite(diebold_mariano(se, ser)),
                "mz_r2": _finite(float(c) ** 2),
                "mean_predicted_vol": float(np.mean(np.sqrt(f))), "mean_realised_vol": float(np.mean(np.sqrt(y))),
            })
    return records


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def vol_leaderboard(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per horizon and model: mean scores over symbols, counts of significant wins, ranked by QLIKE."""
    df = pd.DataFrame(records)
    cols = ["qlike", "qlike_ratio", "mse_ratio", "mz_r2", "mean_predicted_vol", "mean_realised_vol"]
    num = df[["horizon", "model", *cols]].copy()
    num[cols] = num[cols].astype(float)
    agg = num.groupby(["horizon", "model"], sort=False)[cols].mean()
    for loss in ("qlike", "mse"):
        p = df[f"dm_pvalue_{loss}"].astype(float)
        agg[f"beats_naive_{loss}"] = (p < SIGNIFICANCE).groupby([df["horizon"], df["model"]], sort=False).sum()
        agg[f"trails_naive_{loss}"] = (p > 1 - SIGNIFICANCE).groupby([df["horizon"], df["model"]], sort=False).sum()
    agg["symbols"] = df.groupby(["horizon", "model"], sort=False)["symbol"].nunique()
    agg["n"] = df.groupby(["horizon", "model"], sort=False)["n"].sum()
    return agg.reset_index().sort_values(["horizon", "qlike"], kind="stable").reset_index(drop=True)
