"""Periodic retraining in embedded mode: every ``retrain_every``, each live model gets a challenger.

For each live (symbol, horizon) a training job fits the configured model for the horizon (or the
live model's own recipe) on the newest data, validated walk-forward, and asks for promotion
``if_better``: it goes live only if it beats the current model on the latest window (see
:mod:`coincast.jobs.challenge`). Jobs run one after another through the :class:`JobRunner`, so they
never run on the event loop and their progress is published like any other job's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from coincast.domain import Clock, CoincastError, Interval
from coincast.jobs.runner import Job, JobRunner
from coincast.jobs.train import TrainRequest
from coincast.registry.base import ModelRegistry
from coincast.settings import ModelSettings

log = logging.getLogger(__name__)

LoadKlines = Callable[[str, Interval], Awaitable[pd.DataFrame]]


class Retrainer:
    """Retrains the live models on a fixed period.

    Args:
        settings: the ``models`` settings section (period, default model per horizon, expiry).
        registry: the model registry (which models are live).
        jobs: runs the training jobs.
        load_klines: ``await load_klines(symbol, interval)`` returns the newest bars to train on.
        clock: wall time.
    """

    def __init__(
        self, settings: ModelSettings, registry: ModelRegistry, jobs: JobRunner, load_klines: LoadKlines, clock: Clock
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._jobs = jobs
        self._load = load_klines
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.last_run_ms: int | None = None
        self.next_run_ms: int | None = None
        self.last_results: list[dict[str, Any]] = []

    async def run_once(self) -> list[Job]:
        """One round: a challenger per live model, run in turn; returns the finished jobs."""
        self.last_run_ms = self._clock.now_ms()
        done: list[Job] = []
        results: list[dict[str, Any]] = []
        for key, model_id in sorted(self._registry.live().items()):
            current = self._registry.get(model_id)
            horizon = Interval(current.horizon)
            name = self._settings.default_models.get(current.horizon, current.model)
            request = TrainRequest(
                current.symbol,
                horizon,
                name,
                params=dict(current.params) if name == current.model else {},
                folds=self._settings.validation_folds,
                level=current.level,
                promote="if_better",
                expiry_ms=self._settings.expiry_ms,
                feature_set="core+pipeline" if current.feature_set == "core+pipeline" else "core",
                origin="retrain",
            )
            try:
                klines = await self._load(current.symbol, Interval(current.interval))
            except CoincastError as exc:
                results.append({"slot": key, "status": "skipped", "reason": str(exc)})
                continue
            job = self._jobs.submit(request, functools.partial(_same, klines))
            await self._jobs.wait(job.id)
            decision = next((e.get("decision") for e in job.events if e["event"] == "done"), None)
            results.append(
                {
                    "slot": key,
                    "job_id": job.id,
                    "status": job.status,
                    "promoted": job.promoted,
                    "error": job.error,
                    "decision": decision,
                }
            )
            done.append(job)
        self.last_results = results
        return done

    def start(self) -> None:
        if self._settings.retrain_every_ms > 0:
            self._task = asyncio.create_task(self._forever(), name="retrainer")

    async def _forever(self) -> None:
        every = self._settings.retrain_every_ms
        while True:
            self.next_run_ms = self._clock.now_ms() + every
            await asyncio.sleep(every / 1000)
            try:
                await self.run_once()
            except Exception:  # one bad round must not end periodic retraining
                log.exception("retraining round failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def health(self) -> dict[str, Any]:
        return {
            "every": self._settings.retrain_every,
            "last_run_ms": self.last_run_ms,
            "next_run_ms": self.next_run_ms if self._task else None,
            "last_results": self.last_results,
        }


def _same(klines: pd.DataFrame) -> pd.DataFrame:
    return klines
