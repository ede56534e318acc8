"""The background history download of ``coincast up`` on Binance: progress, resume, failure."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tests.fakes.binance_server import FakeBinance, kline_rows

from coincast.domain import Interval, ManualClock
from coincast.jobs.history import HistoryBackfill
from coincast.lake.parquet import open_lake
from coincast.sources.binance import BinanceRest
from coincast.store.duckdb import DuckDBStore

pytestmark = pytest.mark.integration

H = Interval.H1.ms
SYMS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
def served(fake: FakeBinance, shared_data: Path) -> int:
    """Ninety days of recorded hourly klines of two coins on the fake; returns the end (ms)."""
    df = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol").is_in(SYMS))
    df = df.filter(pl.col("open_time").dt.year() == 2022).sort("open_time").filter(
        pl.col("open_time") < pl.datetime(2022, 4, 1, time_zone="UTC"))
    for sym in SYMS:
        fake.klines[(sym, "1h")] = kline_rows(df.filter(pl.col("symbol") == sym), H)
    return int(df["open_time"].dt.epoch("ms").max()) + H


async def test_downloads_into_lake_and_store_with_progress_then_resumes(
    fake: FakeBinance, served: int, tmp_path: Path
) -> None:
    lake, store = open_lake(str(tmp_path / "lake")), DuckDBStore.open(str(tmp_path / "c.db"))
    rest = BinanceRest.from_url(fake.rest_url)
    clock = ManualClock(served)
    try:
        job = HistoryBackfill(rest, lake, store, SYMS, (Interval.H1,), clock, days={Interval.H1: 30})
        assert job.progress.as_dict()["status"] == "pending"
        progress = await job.run()
        assert progress.as_dict() == {"status": "done", "percent": 100.0, "error": "",
                                      "intervals": {"1h": {"days": 30, "total": 2 * 30 * 24, "done": 2 * 30 * 24}}}
        assert lake.read(list(SYMS), Interval.H1).height == 2 * 30 * 24
        rows = await store.history("ETHUSDT", Interval.H1, start_ms=0, end_ms=served, limit=10_000)
        assert len(rows) == 30 * 24 and rows[-1].open_ms == served - H
        # a restart asking for one more day fetches only that day
        again = HistoryBackfill(rest, lake, store, SYMS, (Interval.H1,), clock, days={Interval.H1: 31})
        await again.run()
        assert again.progress.intervals["1h"].total == 2 * 24
    finally:
        await rest.close()
        await store.close()


async def test_an_unavailable_history_stops_the_download_with_a_plain_reason(
    fake: FakeBinance, served: int, tmp_path: Path
) -> None:
    lake, store = open_lake(str(tmp_path / "lake")), DuckDBStore.open(str(tmp_path / "c.db"))
    rest = BinanceRest.from_url(fake.rest_url, max_attempts=1)
    try:  # the fake has no day candles: Binance would answer 400 for them too
        job = HistoryBackfill(rest, lake, store, SYMS, (Interval.H1, Interval.D1), ManualClock(served),
                              days={Interval.H1: 2, Interval.D1: 10})
        progress = await job.run()
        assert progress.status == "failed" and progress.error.startswith("Binance history download stopped:")
        assert progress.intervals["1h"].done == 0  # the longest interval goes first and failed first
    finally:
        await rest.close()
        await store.close()
