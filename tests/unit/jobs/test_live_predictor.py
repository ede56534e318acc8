"""The live predictor: forecasts every origin, hot-reloads a promoted model between two candles, honours expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from tests.unit.registry.models_synth import make_klines

from coincast.domain import Candle, Interval, ManualClock
from coincast.jobs.train import TrainRequest, train_model
from coincast.registry.files import FileModelRegistry
from coincast.store.duckdb import DuckDBStore
from coincast.stream.candles import CandleUpdate
from coincast.stream.predict import LivePredictor

M = 60_000


def _candles(klines: pd.DataFrame) -> list[Candle]:
    out = []
    for r in klines.itertuples():
        ms = int(r.open_time.value // 1_000_000)
        out.append(
            Candle(
                r.symbol,
                Interval.M1,
                ms,
                r.open,
                r.high,
                r.low,
                r.close,
                r.volume,
                r.volume * r.close,
                10,
                r.volume / 2,
                r.volume * r.close / 2,
                True,
            )
        )
    return out


async def _until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_forecasts_switch_models_without_losing_a_candle_and_stop_on_expiry(tmp_path: Path) -> None:
    klines = make_klines(460, step_ms=M, seed=5)
    history, live = klines.iloc[:300], _candles(klines.iloc[300:])
    clock = ManualClock(int(history["open_time"].iloc[-1].value // 1_000_000) + 2 * M)
    reg = FileModelRegistry(tmp_path / "models", clock)
    first = train_model(
        TrainRequest("BTCUSDT", Interval.M1, "persistence", folds=2, promote="always"),
        history,
        reg,
        lambda e, f: None,
        clock=clock,
    ).version
    second = train_model(
        TrainRequest("BTCUSDT", Interval.M1, "drift", folds=2, expiry_ms=30 * M),
        history,
        reg,
        lambda e, f: None,
        clock=clock,
    ).version
    store = DuckDBStore.open(":memory:")
    await store.upsert(_candles(history))
    published: list[dict[str, object]] = []
    predictor = LivePredictor(
        reg, store, clock, [Interval.M1], lambda ch, m: published.append(m), reload_poll_ms=20, score_every_ms=100_000
    )
    await predictor.start(store, ["BTCUSDT"])
    # the newly live model forecasts the newest warm bar at once
    await _until(lambda: len(published) == 1)
    assert published[0]["origin_ms"] == _candles(history)[-1].open_ms and published[0]["model_id"] == first.id

    def feed(cs: list[Candle]) -> None:
        for c in cs:
            clock.set(c.open_ms + M + 1)
            predictor.on_candles([CandleUpdate(c), CandleUpdate(Candle(**{**_fields(c), "closed": False}))])

    feed(live[:10])
    await _until(lambda: len(published) == 11)
    reg.promote(second.id)
    feed(live[10:20])  # hot reload happens between these candles: none is lost
    await _until(lambda: len(published) >= 21 and published[-1]["origin_ms"] == live[19].open_ms)
    stored = await store.predictions("BTCUSDT", "1m", limit=1000)
    origins = sorted({p.origin_ms for p in stored})
    assert origins == [_candles(history)[-1].open_ms] + [c.open_ms for c in live[:20]]
    assert stored[0].model_id == first.id and stored[-1].model_id == second.id
    assert {p.model for p in stored} == {"persistence", "drift"}
    for p in stored:
        assert p.lower < p.predicted_price < p.upper and p.target_ms == p.origin_ms + M and p.due_ms == p.target_ms + M
    status = predictor.health()["models"][0]
    assert status["status"] == "serving" and status["model_id"] == second.id and predictor.reloads == 2

    # expiry: past it, candles still arrive but no forecast is made, and the status says why
    n = len(published)
    clock.set(second.expires_ms or 0)
    feed(live[20:25])
    clock.set(second.expires_ms or 0)
    await _until(predictor.idle)  # every queued origin has been looked at
    assert len(published) == n
    status = predictor.health()["models"][0]
    assert status["status"] == "expired" and "expired at" in status["reason"] and "retrain" in status["reason"]
    await predictor.stop()
    await store.close()


def _fields(c: Candle) -> dict[str, object]:
    return {f: getattr(c, f) for f in Candle.__dataclass_fields__}


def test_forecast_path_widens_with_the_square_root_of_steps() -> None:
    from coincast.api.routes.models import forecast_path
    from coincast.store.predictions import LivePrediction

    p = LivePrediction(
        "m", "drift", "BTCUSDT", "1h", "1h", 0, 3_600_000, 7_200_000, 100.0, 101.0, 99.0, 103.0, 0.6, 0.01, 0.9, 1
    )
    path = forecast_path(p, 4, 3_600_000)
    assert [s["step"] for s in path] == [1, 2, 3, 4]
    assert path[0]["predicted_price"] == 101.0 and abs(path[0]["upper"] - 103.0) < 1e-9
    assert abs(path[3]["predicted_price"] - 100.0 * 1.01**4) < 1e-9
    widths = [s["upper"] / s["predicted_price"] for s in path]
    assert abs(widths[3] - widths[0] ** 2) < 1e-9  # log half-width doubles at 4 steps
