"""The PredictionStore contract on every serving store: idempotent writes, due, outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.factories import T0

from coincast.store.predictions import LivePrediction, PredictionStore
from coincast.wiring import open_store

H = 3_600_000


def pred(i: int, model_id: str = "m1") -> LivePrediction:
    return LivePrediction(model_id, "lightgbm", "BTCUSDT", "1h", "1h", T0 + i * H, T0 + (i + 1) * H, T0 + (i + 2) * H,
                          100.0 + i, 101.0 + i, 99.0 + i, 103.0 + i, 0.55, 0.01, 0.9, T0 + i * H + 5)


@pytest.fixture(params=["duckdb", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PredictionStore]:
    url = f"duckdb:///{tmp_path}/p.db" if request.param == "duckdb" else request.getfixturevalue("postgres_url")
    s = open_store(url)
    assert isinstance(s, PredictionStore)
    yield s
    await s.close()  # type: ignore[attr-defined]


async def test_write_twice_read_newest_first_window(store: PredictionStore) -> None:
    items = [pred(i) for i in range(5)]
    await store.add_predictions(items)
    await store.add_predictions(items)
    got = await store.predictions("BTCUSDT", "1h", limit=3)
    assert got == items[-3:]
    assert await store.predictions("ETHUSDT", "1h", limit=3) == []


async def test_due_and_outcomes(store: PredictionStore) -> None:
    items = [pred(i) for i in range(4)] + [pred(0, model_id="m2")]
    await store.add_predictions(items)
    due = await store.due_predictions(T0 + 3 * H)
    assert {(p.model_id, p.origin_ms) for p in due} == {("m1", T0), ("m2", T0), ("m1", T0 + H)}
    scored = [replace(p, actual_price=150.0, scored_ms=T0 + 9) for p in due if p.model_id == "m1"]
    assert await store.record_outcomes(scored) == 2
    left = await store.due_predictions(T0 + 3 * H)
    assert [(p.model_id, p.origin_ms) for p in left] == [("m2", T0)]
    done = await store.predictions("BTCUSDT", "1h", limit=10, model_id="m1", scored=True)
    assert [p.actual_price for p in done] == [150.0, 150.0] and done[0].scored_ms == T0 + 9
    nulls = await store.predictions("BTCUSDT", "1h", limit=10, scored=False)
    assert len(nulls) == 3 and all(p.actual_price is None for p in nulls)
