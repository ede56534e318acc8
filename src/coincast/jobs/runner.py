"""Training jobs off the event loop: a worker thread per job slot, ordered progress events.

:meth:`JobRunner.submit` returns at once; the fit runs in a :class:`ThreadPoolExecutor` (model fitting
never runs on the API's loop). Events raised in the worker are handed to the loop with
``call_soon_threadsafe``, which runs callbacks in the order they were scheduled, so every client
sees a job's events in the order the job emitted them. Each event is kept on the job (for
``GET /api/v1/train/{job_id}``) and published as ``{"job_id", "seq", "event", ...}``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from coincast.domain import Clock, CoincastError, InvalidRequest, SystemClock
from coincast.jobs.train import TrainRequest, TrainResult, train_model
from coincast.registry.base import ModelRegistry

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, object]], None]


class UnknownJob(InvalidRequest):
    status_code = 404
    code = "unknown_job"


@dataclass(eq=False)
class Job:
    """One training job and what it has reported so far."""

    id: str
    request: TrainRequest
    created_ms: int
    status: str = "queued"  # queued | running | succeeded | failed
    started_ms: int | None = None
    finished_ms: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    model_id: str | None = None
    promoted: bool = False
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def as_dict(self, *, events: bool = True) -> dict[str, Any]:
        r = self.request
        out: dict[str, Any] = {
            "job_id": self.id,
            "status": self.status,
            "symbol": r.symbol,
            "horizon": r.horizon.value,
            "model": r.model,
            "promote": r.promote,
            "created_ms": self.created_ms,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "model_id": self.model_id,
            "promoted": self.promoted,
            "error": self.error,
        }
        last = next((e for e in reversed(self.events) if e["event"] == "epoch"), None)
        out["progress"] = 100.0 if self.status == "succeeded" else (last["progress"] if last else 0.0)
        metrics = next((e["metrics"] for e in self.events if e["event"] == "metrics"), None)
        out["metrics"] = metrics
        if events:
            out["events"] = list(self.events)
        return out


class JobRunner:
    """Runs :func:`~coincast.jobs.train.train_model` jobs in worker threads.

    Args:
        registry: where trained models are registered.
        publish: ``publish(channel, message)`` for every event (the WebSocket hub's ``broadcast``).
        clock: wall time for job timestamps.
        workers: jobs that may run at once (each uses a core).
        keep: finished jobs remembered for status queries.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        publish: Publish | None = None,
        clock: Clock | None = None,
        *,
        workers: int = 1,
        keep: int = 200,
    ) -> None:
        self._registry = registry
        self._publish = publish
        self._clock = clock or SystemClock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coincast-train")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._keep = keep
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, request: TrainRequest, load: Callable[[], pd.DataFrame]) -> Job:
        """Queue a job; ``load()`` (run in the worker) returns the klines to train on. Call on the loop."""
        job = Job(f"job-{secrets.token_hex(6)}", request, self._clock.now_ms())
        self._jobs[job.id] = job
        while len(self._jobs) > self._keep:
            oldest = next(iter(self._jobs.values()))
            if oldest.status in ("queued", "running"):
                break
            self._jobs.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._run(job, load), name=job.id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"unknown training job {job_id!r}")
        return job

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    async def wait(self, job_id: str) -> Job:
        job = self.get(job_id)
        await job.done.wait()
        return job

    async def _run(self, job: Job, load: Callable[[], pd.DataFrame]) -> None:
        loop = asyncio.get_running_loop()

        def emit(event: str, fields: dict[str, Any]) -> None:  # called in the worker thread
            loop.call_soon_threadsafe(self._record, job, event, fields)

        def work() -> TrainResult:
            loop.call_soon_threadsafe(self._started, job)
            return train_model(job.request, load(), self._registry, emit, clock=self._clock)

        try:
            result = await loop.run_in_executor(self._pool, work)
        except CoincastError as exc:
            self._fail(job, str(exc))
        except Exception as exc:  # a job's unexpected failure is reported on the job, not raised
            log.exception("training job %s failed", job.id)
            # the exception's text may hold paths or URLs; anyone may read a job, so it stays in the log
            self._fail(job, f"internal error ({type(exc).__name__}); the server log has the details")
        else:
            job.model_id, job.promoted = result.version.id, result.promoted
            job.status = "succeeded"
            job.finished_ms = self._clock.now_ms()
            job.done.set()

    def _started(self, job: Job) -> None:
        job.status, job.started_ms = "running", self._clock.now_ms()

    def _fail(self, job: Job, message: str) -> None:
        if not any(e["event"] == "error" for e in job.events):
            self._record(job, "error", {"error": "TrainingFailed", "detail": message})
        job.status, job.error, job.finished_ms = "failed", message, self._clock.now_ms()
        self._record(job, "done", {"status": "failed", "model_id": None, "promoted": False, "decision": None})
        job.done.set()

    def _record(self, job: Job, event: str, fields: dict[str, Any]) -> None:
        msg: dict[str, Any] = {"job_id": job.id, "seq": len(job.events) + 1, "event": event, **fields}
        job.events.append(msg)
        if event == "done" and fields.get("model_id"):
            job.model_id = str(fields["model_id"])
        if self._publish is not None:
            self._publish("training", msg)

    async def stop(self) -> None:
        """Drop queued jobs and stop waiting for running ones (a fit cannot be interrupted; its
        thread finishes in the background and its registry writes are atomic)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
