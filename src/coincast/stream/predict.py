"""Live forecasts on the stream: the promoted model of each (symbol, horizon) forecasts every new origin.

:class:`LivePredictor` is a candle sink. On the loop it only keeps the last closed candles per
(symbol, interval) and, when a closed candle is a forecast origin of a live model (its close ends
a horizon step), queues a snapshot of the bars up to it. A worker task turns each queued origin
into a forecast in a one-thread executor (features and ``predict`` are pandas/numpy work that must
not stall the loop), stores it and publishes it as ``{"type": "prediction", ...}``. Origins are
processed in order and none is skipped while its model serves, so a promotion switches models
between two consecutive candles.

Hot reload: the worker polls the registry's :meth:`~coincast.registry.base.ModelRegistry.signal`
(one ``stat``) every ``reload_poll_ms``; when it changes the new live models are loaded off the
loop and swapped in. A model past ``expires_ms`` stops forecasting and its status says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import Gauge

from coincast.domain import Candle, Clock, Interval
from coincast.registry.base import ModelRegistry, ModelVersion, live_key
from coincast.registry.track import PredictionScorer
from coincast.store.base import CandleStore
from coincast.store.predictions import LivePrediction, PredictionStore
from coincast.stream.candles import CandleUpdate
from coincast.train.forecasters.core import ReturnForecaster
from coincast.train.frames import horizon_frames

MODEL_AGE = Gauge("coincast_model_age_seconds", "Age of the live model", ["symbol", "horizon"])
MODEL_SERVING = Gauge("coincast_model_serving", "1 while the live model serves forecasts", ["symbol", "horizon"])
log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, object]], None]
PUBLISH_MAX = 10
MIN_BARS = 2  # horizon_frames infers the bar length from two consecutive bars


def candles_to_klines(candles: Sequence[Candle]) -> pd.DataFrame:
    """Candles to the klines layout the training code reads (``symbol, open_time, open, ..., volume``)."""
    return pd.DataFrame(
        {
            "symbol": [c.symbol for c in candles],
            "open_time": pd.to_datetime(np.array([c.open_ms for c in candles], dtype=np.int64), unit="ms", utc=True),
            "open": np.array([c.open for c in candles], dtype=float),
            "high": np.array([c.high for c in candles], dtype=float),
            "low": np.array([c.low for c in candles], dtype=float),
            "close": np.array([c.close for c in candles], dtype=float),
            "volume": np.array([c.volume for c in candles], dtype=float),
        }
    )


def model_frame(candles: Sequence[Candle], version: ModelVersion) -> pd.DataFrame:
    """The horizon frame the model reads, built from closed candles of its interval (oldest first)."""
    from coincast.train.features import pipeline_features

    extra = pipeline_features if version.feature_set == "core+pipeline" else None
    frames = horizon_frames(candles_to_klines(candles), Interval(version.horizon), extra_features=extra)
    return frames[version.symbol]


def forecast_at(
    model: ReturnForecaster, version: ModelVersion, candles: Sequence[Candle], origin_ms: int, now_ms: int
) -> LivePrediction | None:
    """The model's forecast for the origin ``origin_ms`` from ``candles`` ending there (None: not an origin)."""
    got = forecast_many(model, version, candles, [origin_ms], now_ms)
    return got[0] if got else None


def forecast_many(
    model: ReturnForecaster, version: ModelVersion, candles: Sequence[Candle], origins: Sequence[int], now_ms: int
) -> list[LivePrediction]:
    """Forecasts for each of ``origins`` (bars in ``candles``) from one feature build.

    Building the horizon frame costs about the same for one origin as for many (pandas work per
    column), so a backlog is forecast in one pass. Each forecast still uses rows up to its own
    origin only (the :class:`~coincast.train.base.Forecaster` contract).
    """
    if len(candles) < MIN_BARS or not origins:
        return []
    fc = model.predict(model_frame(candles, version), start_ms=min(origins))
    wanted = set(origins)
    iv = Interval(version.interval)
    out = []
    for i in range(len(fc)):
        origin = int(fc.origin_ms[i])
        if origin not in wanted:
            continue
        prob, vol = float(fc.prob_up[i]), float(fc.volatility[i])
        out.append(
            LivePrediction(
                model_id=version.id,
                model=version.model,
                symbol=version.symbol,
                horizon=version.horizon,
                interval=iv.value,
                origin_ms=origin,
                target_ms=int(fc.target_ms[i]),
                due_ms=int(fc.target_ms[i]) + iv.ms,
                origin_price=float(fc.origin_price[i]),
                predicted_price=float(fc.predicted_price[i]),
                lower=float(fc.lower[i]),
                upper=float(fc.upper[i]),
                prob_up=prob if math.isfinite(prob) else None,
                volatility=vol if math.isfinite(vol) else None,
                level=float(fc.level),
                created_ms=now_ms,
            )
        )
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(slots=True)
class LiveModel:
    """A live slot: the promoted version, its loaded model and what it last did."""

    version: ModelVersion
    model: ReturnForecaster | None
    error: str | None = None
    last_forecast_ms: int | None = None
    last_origin_ms: int | None = None
    forecasts: int = 0

    @property
    def interval(self) -> Interval:
        return Interval(self.version.interval)

    @property
    def horizon(self) -> Interval:
        return Interval(self.version.horizon)


class LivePredictor:
    """Forecasts with the promoted models as candles close; a candle sink.

    Args:
        registry: where live models are found (polled for promotions).
        predictions: where forecasts are stored (and later scored).
        clock: wall time (forecast times, expiry).
        intervals: the streamed intervals (a model reading another interval cannot serve).
        publish: ``publish(channel, message)`` for each forecast (the WebSocket hub's broadcast).
        history_bars: closed candles kept per (symbol, interval) for features.
        reload_poll_ms: how often the registry's signal is checked.
        score_every_ms: how often due forecasts are scored.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        predictions: PredictionStore,
        clock: Clock,
        intervals: Sequence[Interval],
        publish: Publish | None = None,
        *,
        history_bars: int = 400,
        reload_poll_ms: int = 500,
        score_every_ms: int = 1_000,
    ) -> None:
        self._registry = registry
        self._predictions = predictions
        self._clock = clock
        self._intervals = tuple(intervals)
        self._publish = publish
        self._history_bars = history_bars
        self._poll_s = reload_poll_ms / 1000
        self._score_s = score_every_ms / 1000
        self._bars: dict[tuple[str, Interval], deque[Candle]] = {}
        self._live: dict[str, LiveModel] = {}
        self._signal: object = object()  # never equal to a real token: the first poll loads
        self._queue: asyncio.Queue[tuple[str, int, list[Candle]]] = asyncio.Queue(100_000)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coincast-predict")
        self._tasks: list[asyncio.Task[None]] = []
        self.scorer: PredictionScorer | None = None
        self._busy = False
        self.dropped = 0
        self.reloads = 0

    # -- sink side (on the loop, quick) -----------------------------------------------------------

    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        for u in updates:
            c = u.candle
            if c.closed:
                self._add_bar(c)

    def _add_bar(self, c: Candle) -> None:
        key = (c.symbol, c.interval)
        buf = self._bars.get(key)
        if buf is None:
            buf = self._bars[key] = deque(maxlen=self._history_bars)
        if buf and c.open_ms <= buf[-1].open_ms:
            return
        buf.append(c)
        for slot_key, slot in self._live.items():
            v = slot.version
            ends_step = (c.open_ms + c.interval.ms) % slot.horizon.ms == 0
            if v.symbol == c.symbol and slot.interval == c.interval and ends_step:
                self._enqueue(slot_key, c.open_ms, list(buf))

    def _enqueue(self, slot_key: str, origin_ms: int, bars: list[Candle]) -> None:
        try:
            self._queue.put_nowait((slot_key, origin_ms, bars))
        except asyncio.QueueFull:
            self.dropped += 1

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, candles: CandleStore | None = None, symbols: Sequence[str] = ()) -> None:
        """Warm the bar buffers of ``symbols`` from ``candles``, load the live models, start worker and scorer."""
        if candles is not None:
            await self._warm(candles, symbols)
            self.scorer = PredictionScorer(self._predictions, candles, self._clock)
        await self.reload_if_changed()
        self._tasks = [asyncio.create_task(self._work(), name="predictor")]
        if self.scorer is not None:
            self._tasks.append(asyncio.create_task(self._score_forever(), name="prediction-scorer"))

    async def _warm(self, candles: CandleStore, symbols: Sequence[str]) -> None:
        now = self._clock.now_ms()
        for sym in symbols:
            for iv in self._intervals:
                rows = await candles.history(sym, iv, start_ms=0, end_ms=now, limit=self._history_bars)
                for c in rows:
                    self._bars.setdefault((sym, iv), deque(maxlen=self._history_bars)).append(c)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def reload_if_changed(self) -> bool:
        """Load newly promoted models when the registry's signal moved; returns True if it did."""
        token = self._registry.signal()
        if token == self._signal:
            return False
        self._signal = token
        loop = asyncio.get_running_loop()
        wanted = await loop.run_in_executor(self._pool, self._registry.live)
        for key, model_id in wanted.items():
            cur = self._live.get(key)
            if cur is not None and cur.version.id == model_id:
                continue
            slot = await loop.run_in_executor(self._pool, self._load, model_id)
            self._live[key] = slot
            self.reloads += 1
            log.info("live model %s for %s", model_id, key)
            self._forecast_latest(key, slot)
        for key in set(self._live) - set(wanted):
            del self._live[key]
        return True

    def _load(self, model_id: str) -> LiveModel:
        version = self._registry.get(model_id)
        try:
            return LiveModel(version, self._registry.load(model_id))
        except Exception as exc:  # a broken model file must not stop the stream; its status says why
            log.warning("cannot load model %s: %r", model_id, exc)  # the status is public: no paths in it
            return LiveModel(version, None, error=f"cannot load model {model_id} ({type(exc).__name__})")

    def _forecast_latest(self, key: str, slot: LiveModel) -> None:
        """A newly live model forecasts the newest origin it has bars for, without waiting a whole bar."""
        buf = self._bars.get((slot.version.symbol, slot.interval))
        if not buf:
            return
        bars = list(buf)
        while bars and (bars[-1].open_ms + slot.interval.ms) % slot.horizon.ms:
            bars.pop()
        if bars:
            self._enqueue(key, bars[-1].open_ms, bars)

    # -- worker -----------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=self._poll_s)
            except TimeoutError:
                await self.reload_if_changed()
                continue
            self._busy = True
            try:
                # Everything queued meanwhile goes in the same pass: one feature build per slot.
                batch = [first]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self.reload_if_changed()
                by_slot: dict[str, list[tuple[int, list[Candle]]]] = {}
                for key, origin_ms, bars in batch:
                    by_slot.setdefault(key, []).append((origin_ms, bars))
                for key, items in by_slot.items():
                    await self._forecast(key, items)
            finally:
                self._busy = False

    def idle(self) -> bool:
        """True when no origin is queued or being forecast."""
        return self._queue.empty() and not self._busy

    async def _forecast(self, key: str, items: list[tuple[int, list[Candle]]]) -> None:
        slot = self._live.get(key)
        if slot is None or slot.model is None or slot.version.expired(self._clock.now_ms()):
            return
        done = slot.last_origin_ms if slot.last_origin_ms is not None else -1
        origins = sorted({o for o, _ in items if o > done})
        if not origins:
            return
        bars = max(items, key=lambda it: it[0])[1]  # the newest snapshot holds the bars of every origin
        loop = asyncio.get_running_loop()
        try:
            preds = await loop.run_in_executor(
                self._pool, forecast_many, slot.model, slot.version, bars, origins, self._clock.now_ms()
            )
        except Exception as exc:  # bad data must not stop the stream: keep the reason on the slot
            slot.error = f"forecast at {_iso(origins[-1])} failed ({type(exc).__name__})"
            log.warning("predictor: %s: %r", slot.error, exc)
            return
        if not preds:
            return
        slot.error = None
        slot.last_origin_ms, slot.last_forecast_ms = preds[-1].origin_ms, preds[-1].created_ms
        slot.forecasts += len(preds)
        await self._predictions.add_predictions(preds)
        if self._publish is not None:
            # A catch-up burst is stored in full but only its newest forecasts are pushed, so the
            # WebSocket clients' bounded queues keep room for candles.
            for pred in preds[-PUBLISH_MAX:]:
                self._publish("prediction", pred.as_dict())

    async def _score_forever(self) -> None:
        assert self.scorer is not None
        while True:
            await asyncio.sleep(self._score_s)
            try:
                await self.scorer.score_due()
            except Exception as exc:  # a store hiccup delays scores; they are retried next time
                log.warning("prediction scorer: %s", exc)
            self.export_metrics()

    def export_metrics(self) -> None:
        """Model freshness for Prometheus: age and serving state of every live model."""
        for slot in self._live.values():
            st = self.status(slot)
            MODEL_AGE.labels(st["symbol"], st["horizon"]).set(st["age_s"])
            MODEL_SERVING.labels(st["symbol"], st["horizon"]).set(1.0 if st["status"] == "serving" else 0.0)

    # -- status -----------------------------------------------------------------------------------

    def slot(self, symbol: str, horizon: str) -> LiveModel | None:
        return self._live.get(live_key(symbol, horizon))

    def status(self, slot: LiveModel) -> dict[str, Any]:
        """Why a live model is or is not serving: ``serving``, ``waiting``, ``expired`` or ``error``."""
        v, now = slot.version, self._clock.now_ms()
        state, reason = "serving", None
        if v.expired(now):
            assert v.expires_ms is not None
            state, reason = "expired", expiry_reason(v, now)
        elif slot.error is not None:
            state, reason = "error", slot.error
        elif slot.interval not in self._intervals:
            streamed = ", ".join(i.value for i in self._intervals)
            state, reason = "error", f"model reads {v.interval} candles, which are not streamed ({streamed})"
        elif slot.forecasts == 0:
            state = "waiting"
            reason = f"waiting for a closed {v.interval} candle of {v.symbol} ending a {v.horizon} step"
        return {
            "symbol": v.symbol,
            "horizon": v.horizon,
            "model_id": v.id,
            "model": v.model,
            "status": state,
            "reason": reason,
            "age_s": round(v.age_ms(now) / 1000, 3),
            "created_ms": v.created_ms,
            "expires_ms": v.expires_ms,
            "last_forecast_ms": slot.last_forecast_ms,
            "forecasts": slot.forecasts,
        }

    def health(self) -> dict[str, Any]:
        items = [self.status(s) for s in self._live.values()]
        return {
            "live": len(items),
            "serving": sum(i["status"] == "serving" for i in items),
            "reloads": self.reloads,
            "dropped": self.dropped,
            "scored": self.scorer.scored if self.scorer else 0,
            "models": items,
        }


def expiry_reason(version: ModelVersion, now_ms: int) -> str:
    """Why an expired model serves nothing, and what to do."""
    expires = _iso(version.expires_ms) if version.expires_ms is not None else "never"
    return (
        f"model {version.id} expired at {expires} (age {_age(version.age_ms(now_ms))}); it serves no "
        "forecasts until retrained: coincast train, or POST /api/v1/train"
    )


def _age(ms: int) -> str:
    s = ms // 1000
    d, s = divmod(s, 86_400)
    h, s = divmod(s, 3_600)
    m, s = divmod(s, 60)
    return f"{d}d {h}h" if d else f"{h}h {m}m" if h else f"{m}m {s}s"
