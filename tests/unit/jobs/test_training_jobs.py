"""Training jobs: ordered progress events, failures reported, runs off the loop; retraining promotes only if better."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.unit.registry.models_synth import make_klines

from coincast.domain import Interval, InvalidRequest, ManualClock
from coincast.jobs.runner import JobRunner, UnknownJob
from coincast.jobs.train import TrainRequest, train_model
from coincast.registry.files import FileModelRegistry
from coincast.scheduler.retrain import Retrainer
from coincast.settings import ModelSettings

T0 = 1_795_000_000_000


def _check_order(events: list[tuple[str, dict[str, Any]]], windows: int) -> None:
    names = [e for e, _ in events]
    assert names == ["epoch"] * (windows + 1) + ["metrics", "done"]
    epochs = [f for e, f in events if e == "epoch"]
    assert [f["epoch"] for f in epochs] == list(range(1, windows + 2))
    progress = [f["progress"] for f in epochs]
    assert progress == sorted(progress) and progress[-1] == 100.0
    for f in epochs:
        assert set(f) >= {"loss", "val_loss", "progress", "eta_s"} and f["loss"] > 0 and f["eta_s"] >= 0
    assert all(f["val_loss"] > 0 for f in epochs[:-1])  # the final fit has no held-out window
    assert events[-2][1]["metrics"]["n"] > 0


def test_events_come_in_order_then_metrics_then_done(tmp_path: Path) -> None:
    reg = FileModelRegistry(tmp_path)
    events: list[tuple[str, dict[str, Any]]] = []
    res = train_model(
        TrainRequest("BTCUSDT", Interval.H1, "drift", folds=3),
        make_klines(400),
        reg,
        lambda e, f: events.append((e, f)),
    )
    _check_order(events, 3)
    assert events[-1][1] == {"status": "succeeded", "model_id": res.version.id, "promoted": False, "decision": None}


def test_deep_model_reports_its_real_epochs(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    events: list[tuple[str, dict[str, Any]]] = []
    req = TrainRequest(
        "BTCUSDT",
        Interval.H1,
        "lstm",
        folds=1,
        params={"lookback": 8, "units": 4, "max_epochs": 3, "patience": 5, "batch_size": 64},
    )
    train_model(req, make_klines(300), FileModelRegistry(tmp_path), lambda e, f: events.append((e, f)))
    stages = [f["stage"] for e, f in events if e == "epoch"]
    assert stages == ["window 1/1", "final epoch 1", "final epoch 2", "final epoch 3", "final"]


def test_a_failed_training_emits_its_error(tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    with pytest.raises(InvalidRequest, match="usable training samples"):
        train_model(
            TrainRequest("BTCUSDT", Interval.H1, "drift", folds=2),
            make_klines(40),
            FileModelRegistry(tmp_path),
            lambda e, f: events.append((e, f)),
        )
    assert events[-1][0] == "error" and "usable training samples" in events[-1][1]["detail"]
    assert FileModelRegistry(tmp_path).list() == []


def test_bad_requests_fail_before_any_work() -> None:
    with pytest.raises(InvalidRequest, match="unknown model"):
        TrainRequest("BTCUSDT", Interval.H1, "nope")
    with pytest.raises(InvalidRequest, match="folds"):
        TrainRequest("BTCUSDT", Interval.H1, "drift", folds=0)


async def test_runner_runs_off_the_loop_and_publishes_in_order(tmp_path: Path) -> None:
    published: list[tuple[str, dict[str, object]]] = []
    runner = JobRunner(FileModelRegistry(tmp_path), lambda ch, m: published.append((ch, m)), ManualClock(T0))
    threads: list[str] = []
    klines = make_klines(400)

    def load() -> pd.DataFrame:
        threads.append(threading.current_thread().name)
        return klines

    ok = runner.submit(TrainRequest("BTCUSDT", Interval.H1, "persistence", folds=2, promote="always"), load)
    bad = runner.submit(TrainRequest("ETHUSDT", Interval.H1, "persistence", folds=2), load)
    assert ok.status == "queued"
    await asyncio.wait_for(runner.wait(bad.id), 60)
    await runner.wait(ok.id)
    assert threads and all(t.startswith("coincast-train") for t in threads)
    assert ok.status == "succeeded" and ok.promoted and ok.model_id is not None
    assert bad.status == "failed" and "ETHUSDT" in (bad.error or "")
    assert {ch for ch, _ in published} == {"training"}
    mine = [m for _, m in published if m["job_id"] == ok.id]
    _check_order([(str(m["event"]), m) for m in mine], 2)
    assert [m["seq"] for m in mine] == list(range(1, len(mine) + 1))
    failed = [m["event"] for _, m in published if m["job_id"] == bad.id]
    assert failed == ["error", "done"]
    assert runner.get(bad.id).as_dict()["status"] == "failed"
    with pytest.raises(UnknownJob):
        runner.get("job-nope")
    await runner.stop()


async def test_retraining_promotes_only_a_model_that_beats_the_current_one(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    reg = FileModelRegistry(tmp_path, clock)
    trending = make_klines(500, drift=0.004, vol=0.004, seed=3)  # drift clearly beats persistence here
    first = train_model(
        TrainRequest("BTCUSDT", Interval.H1, "persistence", folds=2, promote="always"),
        trending,
        reg,
        lambda e, f: None,
        clock=clock,
    ).version

    async def load(symbol: str, interval: Interval) -> pd.DataFrame:
        return trending

    runner = JobRunner(reg, None, clock)
    to_drift = Retrainer(ModelSettings(default_models={"1h": "drift"}, validation_folds=2), reg, runner, load, clock)
    [job] = await to_drift.run_once()
    decision = to_drift.last_results[0]["decision"]
    assert job.status == "succeeded" and job.promoted, decision
    assert decision["candidate_mae"] < decision["current_mae"] and decision["current_id"] == first.id
    assert reg.live() == {"BTCUSDT/1h": job.model_id}

    back = Retrainer(ModelSettings(default_models={"1h": "persistence"}, validation_folds=2), reg, runner, load, clock)
    [job2] = await back.run_once()
    decision2 = back.last_results[0]["decision"]
    assert job2.status == "succeeded" and not job2.promoted
    assert decision2["candidate_mae"] > decision2["current_mae"] and "does not beat" in decision2["reason"]
    assert reg.live() == {"BTCUSDT/1h": job.model_id}  # unchanged
    assert len(reg.list()) == 3  # the loser is registered, just not live
    await runner.stop()


async def test_retraining_replaces_an_expired_model(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    reg = FileModelRegistry(tmp_path, clock)
    trending = make_klines(500, drift=0.004, vol=0.004, seed=3)
    train_model(
        TrainRequest("BTCUSDT", Interval.H1, "drift", folds=2, promote="always", expiry_ms=1000),
        trending,
        reg,
        lambda e, f: None,
        clock=clock,
    )
    clock.advance(5000)

    async def load(symbol: str, interval: Interval) -> pd.DataFrame:
        return trending

    runner = JobRunner(reg, None, clock)
    r = Retrainer(ModelSettings(default_models={"1h": "persistence"}, validation_folds=2), reg, runner, load, clock)
    [job] = await r.run_once()
    assert job.promoted and "expired" in r.last_results[0]["decision"]["reason"]
    await runner.stop()


async def test_scheduler_runs_when_due_by_the_wall_clock_and_retrains_expired_models_at_once(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    reg = FileModelRegistry(tmp_path, clock)
    trending = make_klines(500, drift=0.004, vol=0.004, seed=3)
    live = train_model(
        TrainRequest("BTCUSDT", Interval.H1, "drift", folds=2, promote="always", expiry_ms=10_000),
        trending,
        reg,
        lambda e, f: None,
        clock=clock,
    ).version

    async def load(symbol: str, interval: Interval) -> pd.DataFrame:
        return trending

    runner = JobRunner(reg, None, clock)
    state = tmp_path / "retrain.json"
    settings = ModelSettings(default_models={"1h": "persistence"}, validation_folds=2, retrain_every="1d")
    sched = Retrainer(settings, reg, runner, load, clock, state, check_s=0.01)
    sched.start()
    async with asyncio.timeout(10):
        while sched.next_run_ms is None:  # the loop has looked at the clock once
            await asyncio.sleep(0.01)
    assert sched.next_run_ms == T0 + 86_400_000
    assert sched.last_run_ms is None and reg.live() == {"BTCUSDT/1h": live.id}  # nothing due, nothing expired
    clock.advance(10_000)  # the live model expires: it is retrained without waiting for the daily round
    async with asyncio.timeout(30):
        while not sched.last_results:
            await asyncio.sleep(0.01)
    assert reg.live() != {"BTCUSDT/1h": live.id}
    assert "expired" in sched.last_results[0]["decision"]["reason"] and not state.exists()
    clock.advance(86_400_000)  # the daily round is due
    async with asyncio.timeout(30):
        while not state.exists():
            await asyncio.sleep(0.01)
    await sched.stop()
    assert json.loads(state.read_text())["last_run_ms"] == T0 + 10_000 + 86_400_000
    restarted = Retrainer(settings, reg, runner, load, clock, state)
    assert restarted._due_ms() == T0 + 10_000 + 2 * 86_400_000  # a restart keeps the period
    await runner.stop()
