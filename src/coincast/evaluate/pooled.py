"""Global models: one model pooled over every coin, walked forward beside the per-coin ones.

``<name>_global`` (for the ``gbm`` and ``classifier`` families) fits one estimator per window on
the training rows of all coins together, stacked in time order, with the coin as one-hot columns
``coin_<SYMBOL>``; every feature of a horizon frame is already scale-free (returns, ratios,
z-scores; regressors learn the volatility-normalised return), so a coin's price level does not
leak into the others'. The window rules are those of :mod:`coincast.evaluate.walk_forward`: a
window's model sees only targets whose time is at or before its cut, forecasts each origin from
that coin's data up to the origin, and its interval pool continues from the out-of-sample
residuals (normalised, so comparable across coins) realised before the next cut. The training
cap of the tabular models (a rolling year of hourly origins) scales with the number of coins.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import pandas as pd

from coincast.domain import InvalidRequest, InvalidTimeRange
from coincast.evaluate.walk_forward import PREDICTION_COLUMNS, WalkForwardConfig, training_frame
from coincast.train.registry import create_model, model_spec

GLOBAL_SUFFIX = "_global"
POOLABLE = ("gbm", "classifier")

Result = tuple[str, str, pd.DataFrame, list[float], str]


def split_global(name: str) -> tuple[str, bool]:
    """``'lightgbm_global' -> ('lightgbm', True)``; other names unchanged."""
    return (name.removesuffix(GLOBAL_SUFFIX), True) if name.endswith(GLOBAL_SUFFIX) else (name, False)


def check_global(name: str) -> None:
    """Raise InvalidRequest unless ``name`` is a registry model of a poolable family (plus suffix)."""
    base, _ = split_global(name)
    spec = model_spec(base)
    if spec.family not in POOLABLE:
        raise InvalidRequest(f"{name!r}: global models exist for the gbm and classifier families, not {spec.family}")


def with_coin(frame: pd.DataFrame, symbols: list[str]) -> pd.DataFrame:
    """The frame with one-hot ``coin_<SYMBOL>`` columns for every pooled symbol."""
    own = str(frame["symbol"].iloc[0])
    return frame.assign(**{f"coin_{s}": float(s == own) for s in symbols})


def evaluate_pooled(frames: dict[str, pd.DataFrame], model: str, cfg: WalkForwardConfig) -> list[Result]:
    """Walk one global model forward over every coin; one result per coin, like per-coin tasks."""
    base, _ = split_global(model)
    symbols = sorted(frames)
    h = cfg.horizon.ms
    framed = {s: with_coin(frames[s], symbols) for s in symbols}
    oms = {s: f["open_ms"].to_numpy() for s, f in framed.items()}
    tests = {s: (om >= cfg.train_end_ms) & (om + h <= cfg.test_end_ms) for s, om in oms.items()}
    if not any(t.any() for t in tests.values()):
        raise InvalidTimeRange("no forecast origins between --train-end and --test-end")
    last_origin = max(int(oms[s][t][-1]) for s, t in tests.items() if t.any())
    params = dict(cfg.params.get(model, {}))
    out: dict[str, list[pd.DataFrame]] = {s: [] for s in symbols}
    fit_s: list[float] = []
    pool: np.ndarray | None = None
    cut, window = cfg.train_end_ms, 0
    seed = (cfg.seed * 1_000_003 + zlib.crc32(model.encode())) % (2**31 - 1)
    while cut <= last_origin:
        nxt = cut + cfg.retrain_every_ms
        train = pd.concat([training_frame(framed[s], cut, h) for s in symbols], ignore_index=True)
        train = train.sort_values(["open_ms", "symbol"], kind="stable").reset_index(drop=True)
        m = create_model(base, seed=seed + window, level=cfg.level, pooled=len(symbols), **params)
        t0 = time.perf_counter()
        m.fit(train, residuals=pool)
        fit_s.append(time.perf_counter() - t0)
        realised: list[tuple[np.ndarray, np.ndarray]] = []
        for s in symbols:
            om = oms[s]
            hist = framed[s][om <= min(nxt - 1, last_origin)]
            if hist.empty or not (hist["open_ms"] >= cut).any():
                continue
            fc = m.predict(hist.drop(columns="target"), start_ms=cut)
            part = fc.to_frame()
            part["window"] = window
            out[s].append(part[(fc.origin_ms >= cfg.train_end_ms) & (fc.target_ms <= cfg.test_end_ms)])
            y = framed[s].set_index("open_ms")["target"].reindex(fc.origin_ms).to_numpy()
            resid = (y - np.log(fc.predicted_price / fc.origin_price)) / fc.volatility
            known = (fc.target_ms <= nxt) & np.isfinite(resid)
            realised.append((fc.target_ms[known], resid[known]))
        # the next window's pool: this one's calibration plus every coin's realised residuals, by time
        t_all = np.concatenate([t for t, _ in realised]) if realised else np.empty(0, np.int64)
        r_all = np.concatenate([r for _, r in realised]) if realised else np.empty(0)
        pool = np.concatenate([m.cal_resid, r_all[np.argsort(t_all, kind="stable")]])[-m.max_cal :]
        cut, window = nxt, window + 1
    results: list[Result] = []
    for s in symbols:
        if not out[s]:
            continue
        preds = pd.concat(out[s], ignore_index=True)
        preds["model"] = model
        close = framed[s].set_index("open_ms")["close"]
        tms = preds["target_time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        preds["actual_price"] = close.reindex(tms).to_numpy()
        # one pooled fit serves every coin: its seconds are shared out equally
        results.append((s, model, preds.loc[:, list(PREDICTION_COLUMNS)], [f / len(symbols) for f in fit_s], ""))
    return results


def compare_scopes(board: pd.DataFrame) -> pd.DataFrame:
    """Each global model next to its per-coin twin (same horizon): which one wins, on what.

    ``winner`` is decided by MASE (mean over coins); the significance counts and the after-cost
    return of both are kept beside it so a MASE win without significance reads as such.
    """
    cols = ["mase", "directional_accuracy", "beats_persistence_mae", "beats_persistence_mse", "strategy_return"]
    have = [c for c in cols if c in board.columns]
    rows = []
    for _, g in board[board["model"].str.endswith(GLOBAL_SUFFIX)].iterrows():
        base = split_global(str(g["model"]))[0]
        twin = board[(board["model"] == base) & (board["horizon"] == g["horizon"])]
        if twin.empty:
            continue
        t = twin.iloc[0]
        row: dict[str, object] = {"horizon": g["horizon"], "model": base}
        for c in have:
            row[f"{c}_per_coin"], row[f"{c}_global"] = t[c], g[c]
        row["winner"] = "global" if g["mase"] < t["mase"] else "per-coin"
        rows.append(row)
    return pd.DataFrame(rows)
