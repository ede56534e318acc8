"""Live track record: stored forecasts are scored once their target bar has closed, not before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coincast.domain import Candle, Interval, ManualClock
from coincast.registry.track import PredictionScorer, track_record
from coincast.store.duckdb import DuckDBStore
from coincast.store.predictions import LivePrediction

H = 3_600_000
T0 = 1_795_000_000_000 // H * H


def _candle(open_ms: int, close: float) -> Candle:
    return Candle("BTCUSDT", Interval.H1, open_ms, close, close, close, close, 1.0, close, 1, 0.5, close / 2, True)


def _pred(origin_ms: int, origin: float, pred: float, lo: float, hi: float, prob: float | None) -> LivePrediction:
    return LivePrediction(
        "m1",
        "drift",
        "BTCUSDT",
        "1h",
        "1h",
        origin_ms,
        origin_ms + H,
        origin_ms + 2 * H,
        origin,
        pred,
        lo,
        hi,
        prob,
        0.01,
        0.9,
        origin_ms + H,
    )


@pytest.fixture
async def store() -> AsyncIterator[DuckDBStore]:
    s = DuckDBStore.open(":memory:")
    yield s
    await s.close()


async def test_forecasts_are_scored_once_their_target_passes(store: DuckDBStore) -> None:
    clock = ManualClock(T0 + H)
    scorer = PredictionScorer(store, store, clock)
    preds = [
        _pred(T0, 100.0, 101.0, 99.0, 103.0, 0.7),  # target T0+1h: actual 102 -> err 1, up, covered
        _pred(T0 + H, 102.0, 102.5, 101.5, 103.0, None),  # target T0+2h: actual 99 -> err 3.5, predicted up, missed
    ]
    await store.add_predictions(preds)
    await store.upsert([_candle(T0, 100.0), _candle(T0 + H, 102.0)])
    assert await scorer.score_due() == []  # the target bar T0+1h closes at T0+2h
    clock.set(T0 + 2 * H - 1)
    assert await scorer.score_due() == []
    clock.set(T0 + 2 * H)
    [first] = await scorer.score_due()
    assert first.origin_ms == T0 and first.actual_price == 102.0 and first.scored_ms == T0 + 2 * H
    clock.set(T0 + 3 * H)
    assert await scorer.score_due() == []  # due, but its bar is not in the store yet: stays pending
    await store.upsert([_candle(T0 + 2 * H, 99.0)])
    clock.set(T0 + 3 * H + 5)
    [second] = await scorer.score_due()
    assert second.actual_price == 99.0
    assert await scorer.score_due() == []  # never scored twice

    scored = await store.predictions("BTCUSDT", "1h", limit=10, scored=True)
    assert [p.actual_price for p in scored] == [102.0, 99.0]
    rec = track_record(scored)
    assert rec["n"] == 2
    assert rec["mae"] == pytest.approx((1.0 + 3.5) / 2)
    assert rec["mase"] == pytest.approx(2.25 / ((2.0 + 3.0) / 2))
    assert rec["direction_hit_rate"] == 0.5
    assert rec["interval_coverage"] == 0.5 and rec["level"] == 0.9
    assert await store.predictions("BTCUSDT", "1h", limit=10, scored=False) == []


def test_empty_track_record() -> None:
    assert track_record([])["n"] == 0 and track_record([])["mae"] is None
