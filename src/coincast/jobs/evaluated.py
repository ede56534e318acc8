"""Register the models of a walk-forward evaluation, so one can be promoted without retraining.

Each (symbol, model) of a ``coincast evaluate`` run ends with the model of its last window, fitted
on the expanding past up to that window's cut and saved in the run's cache directory. Registering
it keeps exactly the model whose forecasts the report scored next to persistence.
"""

from __future__ import annotations

from coincast.domain import Clock, Interval, InvalidRequest, SystemClock
from coincast.evaluate.run import EvaluationResult
from coincast.registry.base import ModelRegistry, ModelVersion
from coincast.registry.files import code_version
from coincast.train.registry import create_model


def register_evaluated(
    result: EvaluationResult,
    registry: ModelRegistry,
    *,
    horizon: Interval,
    level: float,
    seed: int,
    expiry_ms: int,
    clock: Clock | None = None,
) -> list[ModelVersion]:
    """Register every (symbol, model)'s last-window model with the evaluation's metrics.

    Raises:
        InvalidRequest: the run kept no models (it needs a cache directory) or the data's bar
            length is not a candle interval.
    """
    if result.cache_dir is None or not result.last_models:
        raise InvalidRequest("registering needs the window models: run the evaluation with a cache directory")
    interval = next((iv for iv in Interval if iv.ms == result.interval_ms), None)
    if interval is None:
        raise InvalidRequest(f"bars are {result.interval_ms} ms apart, which is not a candle interval")
    now = (clock or SystemClock()).now_ms()
    records = {(r["symbol"], r["model"]): r for r in result.records}
    preds = result.predictions
    out: list[ModelVersion] = []
    for (symbol, model), key in sorted(result.last_models.items()):
        fitted = type(create_model(model)).load(result.cache_dir / key)
        mine = preds[(preds["symbol"] == symbol) & (preds["model"] == model)]
        last_window = int(mine["window"].max()) if "window" in mine and len(mine) else 0
        version = ModelVersion(
            id="",
            symbol=symbol,
            horizon=horizon.value,
            interval=interval.value,
            model=model,
            features=tuple(getattr(fitted, "features", None) or ()),
            feature_set=result.features,
            train_start_ms=result.data_start_ms,
            train_end_ms=result.train_end_ms + last_window * result.retrain_every_ms,
            params={},
            metrics={k: v for k, v in records[(symbol, model)].items() if k not in ("symbol", "model", "horizon")},
            code_version=code_version(),
            created_ms=now,
            expires_ms=now + expiry_ms if expiry_ms > 0 else None,
            level=level,
            origin="evaluate",
            extra={"seed": seed, "window": last_window, "cache_key": key},
        )
        out.append(registry.register(fitted, version))
    return out
