"""A fake platform for the assistant: hand-made hourly candles in an in-memory DuckDB store, live
forecasts (some scored) in a memory prediction store and a one-model registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from coincast.api.app import Services
from coincast.api.ws import Hub
from coincast.domain import Candle, Interval
from coincast.registry.base import ModelVersion, live_key
from coincast.settings import Settings, StreamSettings
from coincast.sources.base import SourceHealth
from coincast.store.duckdb import DuckDBStore
from coincast.store.predictions import LivePrediction, MemoryPredictionStore
from coincast.stream.live import LiveState

H = Interval.H1.ms
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
N = 24 * 30
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
START = {"BTCUSDT": 90_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}


def closes(symbol: str) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, symbol)))
    return START[symbol] * np.exp(np.cumsum(rng.normal(0.0002, 0.006, N)))


def hourly(symbol: str) -> list[Candle]:
    c = closes(symbol)
    out = []
    for i, close in enumerate(c):
        o = c[i - 1] if i else close
        out.append(
            Candle(
                symbol,
                Interval.H1,
                T0 + i * H,
                float(o),
                float(max(o, close) * 1.002),
                float(min(o, close) * 0.998),
                float(close),
                5.0 + i % 7,
                0.0,
                0,
                0.0,
                0.0,
            )
        )
    return out


def prediction(origin_i: int, predicted: float, actual: float | None, origin: float | None = None) -> LivePrediction:
    o = float(closes("BTCUSDT")[origin_i]) if origin is None else origin
    return LivePrediction(
        "BTCUSDT-1h-lgbm-0001",
        "lightgbm",
        "BTCUSDT",
        "1h",
        "1h",
        T0 + origin_i * H,
        T0 + (origin_i + 1) * H,
        T0 + (origin_i + 2) * H,
        o,
        predicted,
        predicted * 0.99,
        predicted * 1.01,
        0.61,
        0.004,
        0.9,
        T0 + (origin_i + 1) * H,
        actual,
        None if actual is None else T0 + (origin_i + 2) * H,
    )


#: scored forecasts: |errors| 1, 2, 0 and persistence |errors| 2, 1, 0.5: MASE = 1 / (3.5 / 3) = 0.857
SCORED = [(100.0, 101.0, 102.0), (102.0, 103.0, 101.0), (101.0, 101.5, 101.5)]


@dataclass
class FakeRegistry:
    version: ModelVersion

    def live(self) -> dict[str, str]:
        return {live_key(self.version.symbol, self.version.horizon): self.version.id}

    def get(self, model_id: str) -> ModelVersion:
        assert model_id == self.version.id
        return self.version


async def fake_models() -> Any:
    preds = MemoryPredictionStore()
    rows = [prediction(600 + i, p, a, origin=o) for i, (o, p, a) in enumerate(SCORED)]
    last = float(closes("BTCUSDT")[-1])
    rows.append(prediction(N - 1, round(last * 1.003, 2), None))
    await preds.add_predictions(rows)
    version = ModelVersion(
        "BTCUSDT-1h-lgbm-0001",
        "BTCUSDT",
        "1h",
        "1h",
        "lightgbm",
        ("ret_1", "rsi_14", "vol_24"),
        "core",
        T0,
        T0 + 500 * H,
        {},
        {"mase": 0.97, "coverage": 0.88},
        "test",
        T0 + 501 * H,
        None,
    )
    return SimpleNamespace(predictions=preds, registry=FakeRegistry(version))


def make_services(
    tmp_path: Path, store: DuckDBStore, models: Any = None, intervals: tuple[Interval, ...] = (Interval.H1,)
) -> Services:
    settings = Settings(data_dir=tmp_path, symbols=SYMBOLS, stream=StreamSettings(intervals=intervals))
    hub = Hub(settings.symbols, settings.stream.intervals, list)
    if models is not None:
        models.settings = settings  # the app's forecasting routes read it when they are built
    return Services(settings, store, LiveState(Interval.H1), hub, SourceHealth("sim", simulated=True), models=models)


@pytest.fixture
async def store() -> AsyncIterator[DuckDBStore]:
    s = DuckDBStore.open(":memory:")
    for sym in SYMBOLS:
        await s.upsert(hourly(sym))
    yield s
    await s.close()


@pytest.fixture
async def services(tmp_path: Path, store: DuckDBStore) -> Services:
    return make_services(tmp_path, store, await fake_models())
