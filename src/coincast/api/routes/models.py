"""Forecasting endpoints: live predictions with their track record, training jobs, models, promotion.

``models_router(service)`` returns an :class:`APIRouter` the app includes. Routes have no ``try``:
errors are :class:`~coincast.domain.InvalidRequest` subclasses the app maps to a status and
``{"error": code, "detail": message}``. Mutating endpoints need the ``X-API-Key`` header to equal
``settings.api.api_key``; with no key configured they are refused, saying how to set one.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from coincast.api.docs import API_KEY_HEADER
from coincast.domain import Interval, InvalidRequest, require_symbol
from coincast.jobs.service import ModelService
from coincast.jobs.train import TrainRequest
from coincast.registry.base import ModelVersion, live_key
from coincast.registry.track import track_record
from coincast.store.predictions import LivePrediction
from coincast.stream.predict import MIN_BARS, expiry_reason, forecast_at
from coincast.train.forecasters.core import ReturnForecaster

API_KEY_ENV = "COINCAST_API__API_KEY"


class MissingApiKey(InvalidRequest):
    status_code = 401
    code = "unauthorized"


class ForbiddenApiKey(InvalidRequest):
    status_code = 403
    code = "forbidden"


class ModelUnavailable(InvalidRequest):
    """No model can answer: none is live for the slot, or the live one expired (409: train or promote one)."""

    status_code = 409
    code = "model_unavailable"


class TrainBody(BaseModel):
    """``POST /api/v1/train``: what to train (the data is the server's: a configured file or its store)."""

    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(examples=["BTCUSDT"])
    horizon: str = Field("1h", examples=["1h", "1d"])
    model: str | None = Field(None, description="zoo name (default: the configured model for the horizon)")
    params: dict[str, Any] = Field(default_factory=dict, description="hyper-parameters of the model")
    promote: Literal["never", "always", "if_better"] = "if_better"
    folds: int | None = Field(None, ge=1, le=50, description="walk-forward validation windows")
    level: float = Field(0.9, gt=0, lt=1, description="nominal coverage of the interval")
    seed: int = 0
    features: Literal["core", "core+pipeline"] = Field("core", description="add the batch-layer indicators")


class PredictBody(BaseModel):
    """``POST /api/v1/predict``: forecasts from the bar at or before ``start``, ``steps`` horizons ahead."""

    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(examples=["BTCUSDT"])
    horizon: str = "1h"
    start: str | None = Field(None, description="ISO-8601 time or epoch ms (default: the newest closed bar)")
    steps: int = Field(1, ge=1, le=500)
    model_id: str | None = Field(None, description="a registered version (default: the live one)")


def models_router(service: ModelService) -> APIRouter:
    """The forecasting routes over ``service`` (see the module docstring)."""
    from coincast.api.app import parse_time

    s = service.settings
    router = APIRouter()

    async def require_key(x_api_key: Annotated[str | None, Depends(API_KEY_HEADER)] = None) -> None:
        key = s.api.api_key
        if key is None or not key.get_secret_value():
            raise ForbiddenApiKey(
                f"this endpoint changes state and is disabled because no API key is configured; "
                f"set {API_KEY_ENV} and send the key in the X-API-Key header"
            )
        if not x_api_key:
            raise MissingApiKey("missing X-API-Key header; this endpoint needs the configured API key")
        if not secrets.compare_digest(x_api_key.encode(), key.get_secret_value().encode()):
            raise ForbiddenApiKey("invalid API key in X-API-Key")

    def version_dict(v: ModelVersion, live: dict[str, str]) -> dict[str, Any]:
        now = service.clock.now_ms()
        return {
            **v.to_dict(),
            "live": live.get(live_key(v.symbol, v.horizon)) == v.id,
            "age_s": round(v.age_ms(now) / 1000, 3),
            "expired": v.expired(now),
        }

    @router.get("/api/v1/predictions/{symbol}", tags=["forecasts"])
    async def predictions(
        symbol: str,
        horizon: str = Query("1h", description="forecast horizon, e.g. 1h or 1d"),
        limit: int = Query(50, ge=1, le=1000, description="how many recent forecasts to return"),
        window: int = Query(500, ge=1, le=100_000, description="scored forecasts in the track record"),
    ) -> dict[str, Any]:
        sym = require_symbol(symbol, s.symbols)
        hz = Interval.parse(horizon).value
        slot = service.predictor.slot(sym, hz)
        status = service.predictor.status(slot) if slot is not None else None
        model_id = slot.version.id if slot is not None else None
        rows = await service.predictions.predictions(sym, hz, limit=limit)
        live_scored = (
            await service.predictions.predictions(sym, hz, limit=window, model_id=model_id, scored=True)
            if model_id
            else []
        )
        all_scored = await service.predictions.predictions(sym, hz, limit=window, scored=True)
        serving = status is not None and status["status"] in ("serving", "waiting")
        current = [p for p in rows if p.model_id == model_id]
        return {
            "symbol": sym,
            "horizon": hz,
            "serving": serving,
            "reason": None if serving else (status["reason"] if status else f"no model is live for {sym} {hz}"),
            "model": status,
            "latest": current[-1].as_dict() if serving and current else None,
            "forecasts": [p.as_dict() for p in rows],
            "track_record": {"model": track_record(live_scored), "all_models": track_record(all_scored)},
        }

    @router.get("/api/crypto/predictions/{symbol}", tags=["aliases"])
    async def crypto_predictions(
        symbol: str, horizon: str = "1h", limit: int = Query(50, ge=1, le=1000)
    ) -> dict[str, Any]:
        return await predictions(symbol, horizon=horizon, limit=limit, window=500)

    @router.post("/api/v1/predict", tags=["forecasts"])
    async def predict(body: PredictBody) -> dict[str, Any]:
        sym = require_symbol(body.symbol, s.symbols)
        hz = Interval.parse(body.horizon)
        now = service.clock.now_ms()
        if body.model_id is not None:
            version = service.registry.get(body.model_id)
            if (version.symbol, version.horizon) != (sym, hz.value):
                raise InvalidRequest(
                    f"model {version.id} forecasts {version.symbol} {version.horizon}, not {sym} {hz.value}"
                )
            model: ReturnForecaster | None = await asyncio.to_thread(service.registry.load, version.id)
        else:
            slot = service.predictor.slot(sym, hz.value)
            if slot is None:
                raise ModelUnavailable(
                    f"no model is live for {sym} {hz.value}; train one (coincast train or POST /api/v1/train) "
                    "and promote it"
                )
            version, model = slot.version, slot.model
        if model is None:
            raise ModelUnavailable(f"model {version.id} could not be loaded")
        if version.expired(now):
            raise ModelUnavailable(expiry_reason(version, now))
        iv = Interval(version.interval)
        start_ms = parse_time(body.start, "start") if body.start else now
        bars = await service.store.history(sym, iv, start_ms=0, end_ms=start_ms - iv.ms, limit=s.models.history_bars)
        while bars and (bars[-1].open_ms + iv.ms) % hz.ms:
            bars.pop()
        if len(bars) < MIN_BARS:
            raise InvalidRequest(f"too few closed {iv.value} candles of {sym} before start to forecast from")
        pred = await asyncio.to_thread(forecast_at, model, version, bars, bars[-1].open_ms, now)
        if pred is None:
            raise InvalidRequest(f"no forecast origin for {sym} at {body.start or 'now'}")
        return {
            "symbol": sym,
            "horizon": hz.value,
            "model_id": version.id,
            "model": version.model,
            "level": pred.level,
            "origin_ms": pred.origin_ms,
            "origin_price": pred.origin_price,
            "prob_up": pred.prob_up,
            "volatility": pred.volatility,
            "forecasts": forecast_path(pred, body.steps, hz.ms),
        }

    @router.post("/api/v1/train", tags=["training"], status_code=202, dependencies=[Depends(require_key)])
    async def train(body: TrainBody) -> dict[str, Any]:
        sym = require_symbol(body.symbol, s.symbols)
        hz = Interval.parse(body.horizon)
        request = TrainRequest(
            sym,
            hz,
            body.model or service.default_model(hz),
            params=body.params,
            folds=body.folds or s.models.validation_folds,
            seed=body.seed,
            level=body.level,
            promote=body.promote,
            expiry_ms=s.models.expiry_ms,
            feature_set=body.features,
        )
        job = await service.submit(request)
        return {**job.as_dict(events=False), "status_url": f"/api/v1/train/{job.id}"}

    @router.get("/api/v1/train", tags=["training"])
    async def train_jobs() -> dict[str, Any]:
        return {"jobs": [j.as_dict(events=False) for j in reversed(service.jobs.jobs())]}

    @router.get("/api/v1/train/{job_id}", tags=["training"])
    async def train_status(job_id: str) -> dict[str, Any]:
        return service.jobs.get(job_id).as_dict()

    @router.get("/api/v1/model-families", tags=["models"])
    async def model_families() -> dict[str, Any]:
        """The model zoo by family: the names ``POST /api/v1/train`` and ``coincast evaluate`` accept."""
        from coincast.train.registry import MODELS

        families: dict[str, list[dict[str, str]]] = {}
        for spec in MODELS.values():
            families.setdefault(spec.family, []).append({"name": spec.name, "description": spec.description})
        return {"families": [{"family": f, "models": m} for f, m in families.items()]}

    @router.get("/api/v1/models", tags=["models"])
    async def models(symbol: str | None = None, horizon: str | None = None) -> dict[str, Any]:
        sym = require_symbol(symbol, s.symbols) if symbol else None
        hz = Interval.parse(horizon).value if horizon else None
        live = service.registry.live()
        versions = await asyncio.to_thread(service.registry.list, sym, hz)
        return {"models": [version_dict(v, live) for v in versions], "live": live}

    @router.get("/api/v1/models/{model_id}", tags=["models"])
    async def model(model_id: str) -> dict[str, Any]:
        return version_dict(service.registry.get(model_id), service.registry.live())

    @router.post("/api/v1/models/{model_id}/promote", tags=["models"], dependencies=[Depends(require_key)])
    async def promote(model_id: str) -> dict[str, Any]:
        v = await asyncio.to_thread(service.registry.promote, model_id)
        return {**version_dict(v, service.registry.live()), "promoted": True}

    return router


def forecast_path(prediction: LivePrediction, steps: int, horizon_ms: int) -> list[dict[str, Any]]:
    """``steps`` horizons ahead from one forecast, assuming independent steps.

    The mean log return adds up (``k * mu``) and the interval's log half-widths grow with
    ``sqrt(k)`` (a random walk's spread), so step 1 is the model's own forecast and interval.
    """
    o = prediction.origin_price
    mu = math.log(prediction.predicted_price / o)
    up = math.log(prediction.upper / prediction.predicted_price)
    down = math.log(prediction.predicted_price / prediction.lower)
    out = []
    for k in range(1, steps + 1):
        centre = o * math.exp(k * mu)
        out.append(
            {
                "step": k,
                "target_ms": prediction.origin_ms + k * horizon_ms,
                "target_time": _iso(prediction.origin_ms + k * horizon_ms),
                "predicted_price": centre,
                "lower": centre * math.exp(-down * math.sqrt(k)),
                "upper": centre * math.exp(up * math.sqrt(k)),
            }
        )
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
