"""Everything the live forecasting needs in one process, built from settings and started in order.

``wiring.Runtime`` builds a :class:`ModelService` after the store and the WebSocket hub, adds
``service.predictor`` to the stream processor's sinks, starts it before the processor runs and
stops it after the processor has drained (so the last candles still get their forecasts).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from coincast.domain import Clock, Interval, InvalidRequest
from coincast.jobs.data import read_klines, store_klines
from coincast.jobs.runner import Job, JobRunner, Publish
from coincast.jobs.train import TrainRequest
from coincast.registry.files import FileModelRegistry
from coincast.scheduler.retrain import Retrainer
from coincast.settings import Settings
from coincast.store.base import CandleStore
from coincast.store.predictions import MemoryPredictionStore, PredictionStore
from coincast.stream.predict import LivePredictor

log = logging.getLogger(__name__)


@dataclass
class ModelService:
    """The model registry, live predictor, training jobs and retraining of one runtime."""

    settings: Settings
    store: CandleStore
    predictions: PredictionStore
    registry: FileModelRegistry
    predictor: LivePredictor
    jobs: JobRunner
    retrainer: Retrainer
    clock: Clock

    @classmethod
    def build(cls, settings: Settings, store: CandleStore, publish: Publish | None, clock: Clock) -> ModelService:
        """Wire the parts; predictions go to ``store`` when it is a :class:`PredictionStore`, else memory."""
        predictions: PredictionStore
        if isinstance(store, PredictionStore):
            predictions = store
        else:
            log.warning("store %s cannot keep predictions; they are kept in memory", type(store).__name__)
            predictions = MemoryPredictionStore()
        m = settings.models
        registry = FileModelRegistry(settings.data_dir / "models", clock)
        predictor = LivePredictor(
            registry,
            predictions,
            clock,
            settings.stream.intervals,
            publish,
            history_bars=m.history_bars,
            reload_poll_ms=m.reload_poll_ms,
            score_every_ms=m.score_every_ms,
        )
        jobs = JobRunner(registry, publish, clock)
        load = functools.partial(training_klines, settings, store, clock)
        retrainer = Retrainer(m, registry, jobs, load, clock, registry.root / "retrain.json")
        return cls(settings, store, predictions, registry, predictor, jobs, retrainer, clock)

    async def start(self) -> None:
        await self.predictor.start(self.store, self.settings.symbols)
        self.retrainer.start()

    async def stop(self) -> None:
        await self.retrainer.stop()
        await self.jobs.stop()
        await self.predictor.stop()

    # -- training ---------------------------------------------------------------------------------

    def train_interval(self, horizon: Interval) -> Interval:
        """The streamed interval training reads for ``horizon``: the horizon itself, else the longest divisor.

        Raises:
            InvalidRequest: no streamed interval divides the horizon.
        """
        fits = [i for i in self.settings.stream.intervals if i.ms <= horizon.ms and horizon.ms % i.ms == 0]
        if not fits:
            streamed = ", ".join(i.value for i in self.settings.stream.intervals)
            raise InvalidRequest(f"horizon {horizon.value} is not a multiple of a streamed interval ({streamed})")
        return max(fits, key=lambda i: i.ms)

    async def submit(self, request: TrainRequest) -> Job:
        """Start a training job on the configured data (read in the worker when it is a file)."""
        path = self.settings.models.train_data
        if path is not None:
            return self.jobs.submit(request, functools.partial(read_klines, path, request.symbol))
        interval = self.train_interval(request.horizon)
        klines = await training_klines(self.settings, self.store, self.clock, request.symbol, interval)
        return self.jobs.submit(request, functools.partial(_same, klines))

    def default_model(self, horizon: Interval) -> str:
        return self.settings.models.default_models.get(horizon.value, "lightgbm")

    # -- status -----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The ``models`` block of ``/health``: live slots with status and reason, retraining."""
        out = self.predictor.health()
        out["expiry"] = self.settings.models.expiry
        out["retraining"] = self.retrainer.health()
        out["jobs_running"] = sum(j.status == "running" for j in self.jobs.jobs())
        return out


async def training_klines(
    settings: Settings, store: CandleStore, clock: Clock, symbol: str, interval: Interval
) -> pd.DataFrame:
    """Training bars: the configured file when set, else the newest candles of ``interval`` in the store."""
    path = settings.models.train_data
    if path is not None:
        return read_klines(path, symbol)
    return await store_klines(store, symbol, interval, limit=settings.models.train_bars, clock=clock)


def _same(klines: pd.DataFrame) -> pd.DataFrame:
    return klines
