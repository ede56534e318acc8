"""On a fresh install without network, every model family trains at every streamed interval.

The default settings' history is generated (one coin, to keep it quick), stored like the first
start of ``coincast up`` stores it, and the training job of the Models page reads it from the
store exactly as it does in the running server. One model per family, each interval.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coincast.domain import Interval, ManualClock
from coincast.jobs.data import store_klines
from coincast.jobs.train import TrainRequest, train_model
from coincast.registry.files import FileModelRegistry
from coincast.settings import Settings
from coincast.sources.sim_history import SimHistory, history_windows, seed_history, simulate_history
from coincast.sources.simulator import SimParams
from coincast.store.duckdb import DuckDBStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

END_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
FAMILIES = {"baseline": "drift", "gbm": "lightgbm", "classifier": "logistic_regression", "deep": "cnn"}
DEEP_FAST = {"max_epochs": 2, "warm_epochs": 1}  # the family and its windows, not its accuracy


@pytest.fixture(scope="module")
def history() -> SimHistory:
    settings = Settings()  # the defaults of a fresh install
    params = SimParams(symbols=("BTCUSDT",), seed=settings.source.seed)
    return simulate_history(params, END_MS, history_windows(settings.stream.intervals,
                                                            settings.source.sim_history_days))


@pytest.fixture
async def store(history: SimHistory) -> AsyncIterator[DuckDBStore]:
    s = DuckDBStore.open(":memory:")
    await seed_history(history, ("BTCUSDT",), s, None)
    yield s
    await s.close()


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("interval", list(Settings().stream.intervals), ids=str)
async def test_every_family_trains_on_the_first_start_history(
    store: DuckDBStore, tmp_path: Path, family: str, interval: Interval
) -> None:
    settings = Settings()
    klines = await store_klines(store, "BTCUSDT", interval, limit=settings.models.train_bars,
                                clock=ManualClock(END_MS))
    assert len(klines) >= min(settings.models.train_bars, 700)  # even 1d has two years
    request = TrainRequest("BTCUSDT", interval, FAMILIES[family], params=DEEP_FAST if family == "deep" else {},
                           folds=settings.models.validation_folds)
    result = train_model(request, klines, FileModelRegistry(tmp_path), lambda event, fields: None,
                         clock=ManualClock(END_MS))
    assert result.version.interval == interval.value and result.metrics["n"] > 0
    assert result.metrics["mase"] > 0  # scored against persistence
