"""One training run: walk-forward validation, the next-window model, metrics, registration.

The run is a short walk-forward over the newest part of the data. The last ``folds`` windows
(together ``val_fraction`` of the origins) are each forecast by a model fitted only on targets
known before the window (one horizon of gap, as in :mod:`coincast.evaluate.walk_forward`); then the
model for the window *after* the data is fitted on everything, its interval seeded with the
walk-forward's out-of-sample residuals, and registered with the walk-forward's metrics. So the
registered model is exactly the evaluated walk-forward's next model, promotable without retraining.

Progress goes to ``emit(event, fields)`` in order: one ``epoch`` per window (``loss``: in-sample
RMSE of the volatility-normalised return error, ``val_loss``: the same on the window, unseen; the
torch nets also report each real epoch of the final fit), then ``metrics``, then ``done``; an
exception becomes an ``error`` event and is re-raised.

The window loop mirrors ``evaluate.walk_forward.evaluate_one`` (which returns predictions only, no
models and no per-window hook) using the same public pieces: ``create_model``, ``fit``, ``predict``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from coincast.domain import Clock, CoincastError, Interval, InvalidRequest, InvalidTimeRange, SystemClock, UnknownSymbol
from coincast.registry.base import ModelRegistry, ModelVersion
from coincast.registry.files import code_version
from coincast.train.features import pipeline_features
from coincast.train.forecasters.core import ReturnForecaster
from coincast.train.frames import check_klines, feature_names, horizon_frames, native_interval_ms
from coincast.train.registry import create_model, model_spec

Emit = Callable[[str, dict[str, Any]], None]
Promote = Literal["never", "always", "if_better"]
IN_SAMPLE_ROWS = 500


@dataclass(frozen=True, slots=True)
class TrainRequest:
    """What to train; times are integer ms UTC (None: all the data given)."""

    symbol: str
    horizon: Interval
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    folds: int = 4
    val_fraction: float = 0.2
    seed: int = 0
    level: float = 0.9
    train_start_ms: int | None = None
    train_end_ms: int | None = None
    promote: Promote = "never"
    expiry_ms: int = 0  # lifetime of the model; 0 = never expires
    feature_set: Literal["core", "core+pipeline"] = "core"
    origin: str = "train"

    def __post_init__(self) -> None:
        model_spec(self.model)
        if not 1 <= self.folds <= 50:
            raise InvalidRequest(f"folds must be between 1 and 50, got {self.folds}")
        if not 0.0 < self.val_fraction < 0.9:
            raise InvalidRequest(f"val_fraction must be in (0, 0.9), got {self.val_fraction}")
        if not 0.0 < self.level < 1.0:
            raise InvalidRequest(f"level must be in (0, 1), got {self.level}")


@dataclass(frozen=True, slots=True)
class TrainResult:
    version: ModelVersion
    metrics: dict[str, Any]
    promoted: bool
    decision: dict[str, Any] | None
    validation: pd.DataFrame  # the walk-forward forecasts (predictions-file layout plus ``window``)


def interval_of(klines: pd.DataFrame) -> Interval:
    """The :class:`Interval` of the data's bars.

    Raises:
        InvalidRequest: the spacing is not a known interval.
    """
    step = native_interval_ms(check_klines(klines))
    for iv in Interval:
        if iv.ms == step:
            return iv
    raise InvalidRequest(f"bars are {step} ms apart, which is not a candle interval coincast knows")


def build_frame(klines: pd.DataFrame, symbol: str, horizon: Interval, feature_set: str) -> pd.DataFrame:
    """The horizon frame of ``symbol`` (see :mod:`coincast.train.frames`) with the named feature set."""
    extra = pipeline_features if feature_set == "core+pipeline" else None
    frames = horizon_frames(klines, horizon, extra_features=extra)
    if symbol not in frames:
        raise UnknownSymbol(f"no data for {symbol!r}; the data has {', '.join(sorted(frames)) or 'no symbols'}")
    return frames[symbol]


def _masked(frame: pd.DataFrame, cut_ms: int, horizon_ms: int) -> pd.DataFrame:
    """Origins up to ``cut_ms`` with the targets not yet visible at ``cut_ms`` hidden."""
    om = frame["open_ms"].to_numpy()
    train = frame[om <= cut_ms].copy()
    train.loc[train["open_ms"].to_numpy() + horizon_ms > cut_ms, "target"] = np.nan
    return train


def _norm_rmse(frame: pd.DataFrame, fc_origin: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> float:
    y = frame.set_index("open_ms")["target"].reindex(fc_origin).to_numpy(float)
    e = (y - mu) / sigma
    e = e[np.isfinite(e)]
    return float(np.sqrt(np.mean(np.square(e)))) if e.size else float("nan")


def _loss(model: ReturnForecaster, frame: pd.DataFrame, start_ms: int, end_ms: int) -> tuple[float, pd.DataFrame]:
    """Normalised RMSE of the model's forecasts for origins in ``[start_ms, end_ms]``, and those forecasts."""
    om = frame["open_ms"].to_numpy()
    hist = frame[om <= end_ms].drop(columns="target")
    fc = model.predict(hist, start_ms=start_ms)
    mu = np.log(fc.predicted_price / fc.origin_price)
    return _norm_rmse(frame, fc.origin_ms, mu, fc.volatility), fc.to_frame()


def fold_cuts(frame: pd.DataFrame, folds: int, val_fraction: float, horizon_ms: int) -> list[int]:
    """Start times of the ``folds`` validation windows over the newest ``val_fraction`` of origins.

    Raises:
        InvalidRequest: too little data for the windows.
    """
    om = frame["open_ms"].to_numpy()
    known = om[np.isfinite(frame["target"].to_numpy(float))]
    n_val = round(val_fraction * known.size)
    if known.size < 2 or n_val < folds:
        raise InvalidRequest(f"only {known.size} origins with a known target; too few for {folds} validation windows")
    starts = known[-n_val:][:: max(1, n_val // folds)][:folds]
    return [int(s) for s in starts]


class _Progress:
    def __init__(self, emit: Emit, steps: int) -> None:
        self.emit, self.steps, self.t0, self.epoch = emit, steps, time.monotonic(), 0

    def report(self, done: float, loss: float, val_loss: float | None, stage: str) -> None:
        self.epoch += 1
        frac = min(1.0, done / self.steps)
        elapsed = time.monotonic() - self.t0
        eta = elapsed / frac * (1.0 - frac) if frac > 0 else None
        self.emit(
            "epoch",
            {
                "epoch": self.epoch,
                "stage": stage,
                "loss": _finite(loss),
                "val_loss": _finite(val_loss),
                "progress": round(100.0 * frac, 2),
                "eta_s": None if eta is None else round(eta, 3),
            },
        )


def _ms(times: pd.Series) -> np.ndarray:
    return np.asarray(times.astype("datetime64[ms, UTC]").astype("int64").to_numpy())


def _iso(ms: int) -> str:
    return str(pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def train_model(
    request: TrainRequest,
    klines: pd.DataFrame,
    registry: ModelRegistry,
    emit: Emit,
    *,
    clock: Clock | None = None,
) -> TrainResult:
    """Validate walk-forward, fit the next-window model, register it (and promote as asked).

    Raises:
        InvalidRequest: unknown symbol, bad window, too little data (also sent as an ``error`` event).
    """
    try:
        return _train(request, klines, registry, emit, clock or SystemClock())
    except Exception as exc:
        # progress events go to every WebSocket client: only coincast's own messages are shown
        detail = str(exc) if isinstance(exc, CoincastError) else "internal error; the server log has the details"
        emit("error", {"error": type(exc).__name__, "detail": detail})
        raise


def _train(
    request: TrainRequest, klines: pd.DataFrame, registry: ModelRegistry, emit: Emit, clock: Clock
) -> TrainResult:
    from coincast.evaluate.metrics import score  # scipy and statsmodels: loaded when a job runs
    from coincast.jobs.challenge import challenge

    h = request.horizon.ms
    bars = check_klines(klines)
    bars = bars[bars["symbol"] == request.symbol]
    if bars.empty:
        raise UnknownSymbol(f"no {request.symbol} bars in the training data")
    covers = f"the data covers {_iso(int(bars['open_ms'].iloc[0]))} .. {_iso(int(bars['open_ms'].iloc[-1]))}"
    if request.train_start_ms is not None:
        bars = bars[bars["open_ms"] >= request.train_start_ms]
    if request.train_end_ms is not None:
        bars = bars[bars["open_ms"] <= request.train_end_ms]  # nothing after the window is read
    if bars.empty:
        raise InvalidTimeRange(f"no {request.symbol} bars in the training window; {covers}")
    interval = interval_of(bars)
    frame = build_frame(bars.drop(columns="open_ms"), request.symbol, request.horizon, request.feature_set)
    cuts = fold_cuts(frame, request.folds, request.val_fraction, h)
    om = frame["open_ms"].to_numpy()
    last_origin = int(om[np.isfinite(frame["target"].to_numpy(float))][-1])
    deep = model_spec(request.model).family == "deep"
    progress = _Progress(emit, len(cuts) + 1)
    previous: ReturnForecaster | None = None
    pool: np.ndarray | None = None
    parts: list[pd.DataFrame] = []
    for k, cut in enumerate(cuts):
        end = cuts[k + 1] - 1 if k + 1 < len(cuts) else last_origin
        m = create_model(request.model, seed=request.seed + k, level=request.level, **request.params)
        train = _masked(frame, cut, h)
        m.fit(train, residuals=pool, previous=previous)
        t_om = train["open_ms"].to_numpy()
        loss, _ = _loss(m, train, int(t_om[max(0, t_om.size - IN_SAMPLE_ROWS)]), cut)
        val_loss, part = _loss(m, frame, cut, end)
        part["window"] = k
        parts.append(part)
        y = frame.set_index("open_ms")["target"].reindex(_ms(part["origin_time"])).to_numpy()
        resid = (y - np.log(part["predicted_price"] / part["origin_price"]).to_numpy()) / part[
            "predicted_volatility"
        ].to_numpy()
        pool = np.concatenate([m.cal_resid, resid[np.isfinite(resid)]])[-m.max_cal :]
        previous = m
        progress.report(k + 1, loss, val_loss, f"window {k + 1}/{len(cuts)}")
    validation = pd.concat(parts, ignore_index=True)
    close = frame.set_index("open_ms")["close"]
    validation["actual_price"] = close.reindex(_ms(validation["target_time"])).to_numpy()

    final = create_model(request.model, seed=request.seed + len(cuts), level=request.level, **request.params)
    if deep:
        max_epochs = max(1, int(getattr(final, "max_epochs", 1)))

        def on_epoch(epoch: int, loss: float, val: float) -> None:
            progress.report(len(cuts) + min(1.0, (epoch + 1) / max_epochs), loss, val, f"final epoch {epoch + 1}")

        final.epoch_callback = on_epoch  # type: ignore[attr-defined]
    final.fit(frame, residuals=pool, previous=previous)
    if deep:
        final.epoch_callback = None  # type: ignore[attr-defined]
    final_loss, _ = _loss(final, frame, int(om[max(0, om.size - IN_SAMPLE_ROWS)]), int(om[-1]))
    progress.report(len(cuts) + 1, final_loss, None, "final")

    metrics = score(validation)
    metrics["windows"] = len(cuts)
    metrics["validation_start_ms"] = cuts[0]
    emit("metrics", {"metrics": metrics})
    now = clock.now_ms()
    version = ModelVersion(
        id="",
        symbol=request.symbol,
        horizon=request.horizon.value,
        interval=interval.value,
        model=request.model,
        features=tuple(getattr(final, "features", None) or feature_names(frame)),
        feature_set=request.feature_set,
        train_start_ms=int(bars["open_ms"].iloc[0]),
        train_end_ms=last_origin + h,
        params=dict(request.params),
        metrics=metrics,
        code_version=code_version(),
        created_ms=now,
        expires_ms=now + request.expiry_ms if request.expiry_ms > 0 else None,
        level=request.level,
        origin=request.origin,
        extra={"seed": request.seed, "folds": request.folds, "val_fraction": request.val_fraction},
    )
    version = registry.register(final, version)
    decision: dict[str, Any] | None = None
    promoted = False
    if request.promote == "always":
        registry.promote(version.id)
        promoted = True
    elif request.promote == "if_better":
        last = validation[validation["window"] == len(cuts) - 1]
        decision = challenge(frame, last, cuts[-1], version, registry, now_ms=now)
        if decision["promote"]:
            registry.promote(version.id)
            promoted = True
    emit("done", {"status": "succeeded", "model_id": version.id, "promoted": promoted, "decision": decision})
    return TrainResult(version, metrics, promoted, decision, validation)
