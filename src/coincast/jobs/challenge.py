"""Champion versus challenger on the latest walk-forward window: promote only a better model.

Both forecast the same origins of the newest validation window, neither having seen a target in
it: the challenger is the candidate's walk-forward model of that window; the champion is the live
model as it is when its training ended before the window, otherwise (it has seen the window) its
recipe (model name and hyper-parameters) refitted on the data before the window. The score is the
mean absolute error of the predicted price; the challenger must be strictly better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from coincast.registry.base import ModelRegistry, ModelVersion, live_key
from coincast.train.registry import create_model


def _mae(preds: pd.DataFrame, actual: pd.Series) -> tuple[float, np.ndarray]:
    origin = np.asarray(preds["origin_time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy())
    act = actual.reindex(origin).to_numpy(float)
    err = np.abs(preds["predicted_price"].to_numpy(float) - act)
    ok = np.isfinite(err)
    return (float(np.mean(err[ok])) if ok.any() else float("nan")), origin[ok]


def challenge(
    frame: pd.DataFrame,
    candidate_preds: pd.DataFrame,
    window_start_ms: int,
    candidate: ModelVersion,
    registry: ModelRegistry,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Decide whether ``candidate`` replaces the live model of its (symbol, horizon).

    Args:
        frame: the horizon frame the candidate was validated on.
        candidate_preds: the candidate's forecasts of the latest window (predictions-file layout).
        window_start_ms: first origin of that window.
        candidate: the registered candidate.
        registry: where the live model is found.
        now_ms: wall time; an expired live model is always replaced.

    Returns:
        ``{"promote", "reason", "candidate_mae", "current_mae", "current_id", "n", "window_start_ms"}``.
    """
    h_ms = int(pd.Series(np.diff(frame["open_ms"].to_numpy())).mode().iloc[0])
    actual = pd.Series(frame["close"].to_numpy(float), index=frame["open_ms"].to_numpy()).reindex(
        frame["open_ms"].to_numpy() + h_ms
    )
    actual.index = frame["open_ms"].to_numpy()
    cand_mae, origins = _mae(candidate_preds, actual)
    out: dict[str, Any] = {
        "candidate_id": candidate.id,
        "candidate_mae": cand_mae,
        "window_start_ms": window_start_ms,
        "current_id": None,
        "current_mae": None,
        "n": int(origins.size),
    }
    current_id = registry.live().get(live_key(candidate.symbol, candidate.horizon))
    if current_id is None:
        return {**out, "promote": True, "reason": "no live model yet"}
    current = registry.get(current_id)
    out["current_id"] = current_id
    if now_ms is not None and current.expired(now_ms):
        # An expired model serves nothing; keeping it would leave the slot dark for good.
        return {**out, "promote": True, "reason": f"the live model {current_id} has expired"}
    if current.interval != candidate.interval or current.feature_set != candidate.feature_set:
        return {**out, "promote": True, "reason": "the live model reads other bars or features; replaced"}
    om = frame["open_ms"].to_numpy()
    end = int(origins.max()) if origins.size else window_start_ms
    hist = frame[om <= end].drop(columns="target")
    if current.train_end_ms <= window_start_ms:
        model = registry.load(current_id)
        how = "live model as is"
    else:
        train = frame[om <= window_start_ms].copy()
        train.loc[train["open_ms"].to_numpy() + h_ms > window_start_ms, "target"] = np.nan
        model = create_model(
            current.model, seed=int(current.extra.get("seed", 0)), level=current.level, **current.params
        ).fit(train)
        how = "live model's recipe refitted before the window"
    fc = model.predict(hist, start_ms=window_start_ms).to_frame()
    fc = fc[fc["origin_time"].astype("datetime64[ms, UTC]").astype("int64").isin(origins)]
    cur_mae, _ = _mae(fc, actual)
    out["current_mae"] = cur_mae
    better = bool(np.isfinite(cand_mae) and (not np.isfinite(cur_mae) or cand_mae < cur_mae))
    verdict = "beats" if better else "does not beat"
    reason = f"candidate MAE {cand_mae:.6g} {verdict} the current {cur_mae:.6g} ({how}) on {origins.size} forecasts"
    return {**out, "promote": better, "reason": reason}
