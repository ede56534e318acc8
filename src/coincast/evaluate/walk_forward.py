"""Walk-forward evaluation: train on the past, forecast the following unseen period, roll on.

For each (symbol, model) the test period is cut into windows of ``retrain_every_ms``. The model of
window ``k`` is fitted on every origin whose *target* time is at or before the window's cut (so
train and test targets never overlap: the gap is one horizon) and then forecasts each origin of
the window from the data up to that origin only. Window ``k + 1`` reuses window ``k``: its
realised out-of-sample residuals seed the conformal interval (no second calibration fit) and
the torch nets continue from its weights. (symbol, model) tasks run in parallel processes.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coincast.domain import Interval, InvalidTimeRange
from coincast.train.base import BAND_LEVELS, band_columns
from coincast.train.forecasters.core import ReturnForecaster
from coincast.train.registry import create_model

PREDICTION_COLUMNS = (
    "symbol",
    "model",
    "horizon",
    "origin_time",
    "target_time",
    "predicted_price",
    "lower",
    "upper",
    "prob_up",
    "actual_price",
    "origin_price",
    "predicted_volatility",
    "level",
    "window",
    *(c for b in BAND_LEVELS for c in band_columns(b)),
)

DEFAULT_RETRAIN = {Interval.H1: 7 * 86_400_000, Interval.D1: 30 * 86_400_000}


@dataclass(frozen=True, slots=True)
class WalkForwardConfig:
    """What to evaluate: times are integer ms UTC (origins ``train_end_ms <= t``, targets ``<= test_end_ms``)."""

    horizon: Interval
    models: tuple[str, ...]
    train_end_ms: int
    test_end_ms: int
    retrain_every_ms: int
    seed: int = 0
    level: float = 0.9
    n_jobs: int = 2
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_dir: str | None = None  # fitted window models are saved here and reused by later runs


def default_retrain_ms(horizon: Interval) -> int:
    """Weekly for hourly horizons and shorter, monthly (30 days) for daily."""
    return DEFAULT_RETRAIN.get(horizon, 7 * 86_400_000 if horizon.ms < 86_400_000 else 30 * 86_400_000)


def task_seed(seed: int, symbol: str, model: str) -> int:
    """A stable per-task seed (independent of task order and process)."""
    return (seed * 1_000_003 + zlib.crc32(f"{symbol}/{model}".encode())) % (2**31 - 1)


def training_frame(frame: pd.DataFrame, cut_ms: int, horizon_ms: int) -> pd.DataFrame:
    """Rows up to ``cut_ms`` with every target whose time is after ``cut_ms`` hidden (NaN).

    So the last training target ends at the cut and the first test origin starts there: a gap of
    one horizon, no overlapping targets.
    """
    train = frame[frame["open_ms"].to_numpy() <= cut_ms].copy()
    train.loc[train["open_ms"].to_numpy() + horizon_ms > cut_ms, "target"] = np.nan
    return train


def evaluate_one(
    frame: pd.DataFrame, model: str, cfg: WalkForwardConfig, *, threads: int = 1
) -> tuple[pd.DataFrame, list[float], str]:
    """Walk one model forward over one symbol's horizon frame.

    Returns the predictions, the fit seconds per window and the cache key of the last window's
    model (saved under ``cfg.cache_dir`` when one is set, so it can be registered without refitting).
    """
    import time

    h = cfg.horizon.ms
    om = frame["open_ms"].to_numpy()
    test_mask = (om >= cfg.train_end_ms) & (om + h <= cfg.test_end_ms)
    if not test_mask.any():
        raise InvalidTimeRange("no forecast origins between --train-end and --test-end")
    symbol = str(frame["symbol"].iloc[0])
    last_origin = int(om[test_mask][-1])
    params = dict(cfg.params.get(model, {}))
    if "n_jobs" not in params and _takes_threads(model):
        params["n_jobs"] = threads
    previous: ReturnForecaster | None = None
    pool: np.ndarray | None = None
    out: list[pd.DataFrame] = []
    fit_s: list[float] = []
    cut, window, key = cfg.train_end_ms, 0, ""
    while cut <= last_origin:
        nxt = cut + cfg.retrain_every_ms
        train = training_frame(frame, cut, h)
        seed = task_seed(cfg.seed, symbol, model) + window
        m = create_model(model, seed=seed, level=cfg.level, **params)
        key = _cache_key(key, model, params, seed, cfg.level, train, pool)
        t0 = time.perf_counter()
        cached = _cache_load(cfg.cache_dir, key, type(m))
        if cached is not None:
            m = cached
        else:
            m.fit(train, residuals=pool, previous=previous)
            if cfg.cache_dir is not None:
                m.save(Path(cfg.cache_dir) / key)
        fit_s.append(time.perf_counter() - t0)
        hist = frame[om <= min(nxt - 1, last_origin)]
        fc = m.predict(hist.drop(columns="target"), start_ms=cut)
        part = fc.to_frame()
        part["window"] = window
        part = part[(fc.origin_ms >= cfg.train_end_ms) & (fc.target_ms <= cfg.test_end_ms)]
        out.append(part)
        # Out-of-sample residuals whose target time has passed at the next cut seed its interval.
        realized = frame.set_index("open_ms")["target"].reindex(fc.origin_ms).to_numpy()
        resid = (realized - np.log(fc.predicted_price / fc.origin_price)) / fc.volatility
        known = (fc.target_ms <= nxt) & np.isfinite(resid)
        pool = np.concatenate([m.cal_resid, resid[known]])[-m.max_cal :]
        previous, cut, window = m, nxt, window + 1
    preds = pd.concat(out, ignore_index=True)
    close = frame.set_index("open_ms")["close"]
    tms = preds["target_time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    preds["actual_price"] = close.reindex(tms).to_numpy()
    return preds.loc[:, list(PREDICTION_COLUMNS)], fit_s, key


def _cache_key(
    previous_key: str,
    model: str,
    params: dict[str, Any],
    seed: int,
    level: float,
    train: pd.DataFrame,
    pool: np.ndarray | None,
) -> str:
    """Content hash of everything a window's fit depends on (chained through earlier windows)."""
    h = hashlib.sha256()
    h.update(repr((previous_key, model, sorted(params.items()), seed, level, list(train.columns))).encode())
    h.update(pd.util.hash_pandas_object(train, index=False).to_numpy().tobytes())
    if pool is not None:
        h.update(np.ascontiguousarray(pool, dtype=np.float64).tobytes())
    return f"{model}-{h.hexdigest()[:32]}"


def _cache_load(cache_dir: str | None, key: str, cls: type[ReturnForecaster]) -> ReturnForecaster | None:
    if cache_dir is None or not (Path(cache_dir) / key / "model.joblib").is_file():
        return None
    return cls.load(Path(cache_dir) / key)


def _takes_threads(model: str) -> bool:
    from coincast.train.registry import model_spec

    return model_spec(model.removesuffix("_global")).family in ("gbm", "classifier", "deep")


Task = tuple[dict[str, pd.DataFrame], str, WalkForwardConfig, int]
Result = tuple[str, str, pd.DataFrame, list[float], str]


def _run(args: Task) -> list[Result]:
    """One task: a per-coin model on one frame, or a global model (``*_global``) on all of them."""
    frames, model, cfg, threads = args
    if model.endswith("_global"):
        from coincast.evaluate.pooled import evaluate_pooled

        return evaluate_pooled(frames, model, cfg)
    (frame,) = frames.values()
    preds, fit_s, key = evaluate_one(frame, model, cfg, threads=threads)
    return [(str(frame["symbol"].iloc[0]), model, preds, fit_s, key)]


def walk_forward(
    frames: dict[str, pd.DataFrame],
    cfg: WalkForwardConfig,
    *,
    progress: Callable[[str, str], None] | None = None,
    last_models: dict[tuple[str, str], str] | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, str], list[float]]]:
    """Evaluate every model on every symbol; returns all predictions and fit seconds per task and window.

    ``last_models``, when given, receives the cache key of each (symbol, model)'s last window model.

    Tasks run in ``cfg.n_jobs`` processes (joblib/loky); each is deterministic given ``cfg.seed``
    so the result does not depend on scheduling. ``progress(symbol, model)`` is called per task.
    """
    tasks: list[tuple[dict[str, pd.DataFrame], str, WalkForwardConfig]] = [
        ({s: frames[s]}, m, cfg) for s in sorted(frames) for m in cfg.models if not m.endswith("_global")
    ] + [(frames, m, cfg) for m in cfg.models if m.endswith("_global")]
    # One thread per model: on a shared machine OpenMP pools (LightGBM, XGBoost) under contention
    # spin and run 10x slower; processes, not threads, give the parallelism.
    threads = 1
    results = list(_execute(tasks, cfg.n_jobs, threads, progress))
    if last_models is None:
        last_models = {}
    preds = pd.concat([r[2] for r in results], ignore_index=True)
    order = {m: i for i, m in enumerate(cfg.models)}
    preds["_m"] = preds["model"].map(order)
    preds = preds.sort_values(["symbol", "_m", "origin_time"], kind="stable").drop(columns="_m")
    last_models.update({(r[0], r[1]): r[4] for r in results if r[4]})  # global models are not registered
    return preds.reset_index(drop=True), {(r[0], r[1]): r[3] for r in results}


def _execute(
    tasks: Sequence[tuple[dict[str, pd.DataFrame], str, WalkForwardConfig]],
    n_jobs: int,
    threads: int,
    progress: Callable[[str, str], None] | None,
) -> Iterator[Result]:
    args: list[Task] = [(f, m, c, threads) for f, m, c in tasks]
    if n_jobs <= 1 or len(args) <= 1:
        gen: Iterator[list[Result]] = map(_run, args)
    else:
        from joblib import Parallel, delayed

        # Slowest families first so the pool does not end waiting on one long task.
        args.sort(key=lambda a: _cost_rank(a[1]))
        gen = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(_run)(a) for a in args)
    for rs in gen:
        for r in rs:
            if progress is not None:
                progress(r[0], r[1])
            yield r


def _cost_rank(model: str) -> int:
    from coincast.train.registry import model_spec

    if model.endswith("_global"):
        return -1  # one task fits every coin: the longest of all
    return {"deep": 0, "classifier": 1, "gbm": 2}.get(model_spec(model).family, 3)
