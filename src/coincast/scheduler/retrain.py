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
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pandas as pd

from coincast.domain import Clock, CoincastError, Interval
from coincast.jobs.runner import Job, JobRunner
from coincast.jobs.train import TrainRequest
from coincast.registry.base import ModelRegistry
from coincast.settings import ModelSettings

log = logging.getLogger(__name__)

CHECK_S = 60.0
LoadKlines = Callable[[str, Interval], Awaitable[pd.DataFrame]]


class Retrainer:
    """Retrains the live models on a fixed period.

    Args:
        settings: the ``models`` settings section (period, default model per horizon, expiry).
        registry: the model registry (which models are live).
        jobs: runs the training jobs.
        load_klines: ``await load_klines(symbol, interval)`` returns the newest bars to train on.
        clock: wall time.
        state_path: a JSON file remembering the last round, so a restart does not reset the period.
        check_s: how often (seconds) the loop looks at the clock and for expired models.
    """

    def __init__(
        self,
        settings: ModelSettings,
        registry: ModelRegistry,
        jobs: JobRunner,
        load_klines: LoadKlines,
        clock: Clock,
        state_path: Path | None = None,
        *,
        check_s: float = CHECK_S,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._jobs = jobs
        self._load = load_klines
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._state_path = state_path
        self._started_ms = clock.now_ms()
        self._tried: set[str] = set()
        self._check_s = check_s
        self.last_run_ms: int | None = None
        self.next_run_ms: int | None = None
        self.last_results: list[dict[str, Any]] = []

    async def run_once(self, only: set[str] | None = None) -> list[Job]:
        """One round: a challenger per live model (or per slot in ``only``), in turn; returns the finished jobs."""
        self.last_run_ms = self._clock.now_ms()
        if only is None and self._state_path is not None:
            self._state_path.write_text(json.dumps({"last_run_ms": self.last_run_ms}) + "\n")
        done: list[Job] = []
        results: list[dict[str, Any]] = []
        for key, model_id in sorted(self._registry.live().items()):
            if only is not None and key not in only:
                continue
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

    def _due_ms(self) -> int:
        """When the next full round is due: one period after the last (kept across restarts)."""
        last = self.last_run_ms
        if last is None and self._state_path is not None and self._state_path.is_file():
            last = int(json.loads(self._state_path.read_text()).get("last_run_ms", 0)) or None
        if last is None:
            last = self._started_ms
        return last + self._settings.retrain_every_ms

    def _expired_slots(self) -> set[str]:
        """Live slots whose model has expired and has not been retrained for since."""
        now = self._clock.now_ms()
        out = set()
        for key, model_id in self._registry.live().items():
            if model_id not in self._tried and self._registry.get(model_id).expired(now):
                out.add(key)
                self._tried.add(model_id)
        return out

    async def _forever(self) -> None:
        # Wake at least every check_s: a round is due by the wall clock (a restart does not reset
        # the period), and an expired live model is retrained at once rather than at the next round.
        while True:
            self.next_run_ms = self._due_ms()
            wait_ms = self.next_run_ms - self._clock.now_ms()
            if wait_ms > 0:
                await asyncio.sleep(min(wait_ms / 1000, self._check_s))
            try:
                if self._clock.now_ms() >= self.next_run_ms:
                    await self.run_once()
                elif expired := self._expired_slots():
                    await self.run_once(only=expired)
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
