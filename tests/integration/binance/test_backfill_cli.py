"""Resumable backfill into the lake (library and ``coincast backfill``) and ``coincast import``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest
import typer
from click.testing import Result
from polars.testing import assert_frame_equal
from tests.fakes.binance_server import FakeBinance, kline_rows
from typer.testing import CliRunner

from coincast.cli.ingest import register
from coincast.domain import Interval, InvalidInterval
from coincast.lake.parquet import open_lake
from coincast.sources.binance import BinanceRest
from coincast.sources.binance.backfill import backfill, missing_spans
from coincast.wiring import open_store

pytestmark = pytest.mark.integration

H = Interval.H1.ms


@pytest.fixture
def klines(shared_data: Path) -> pl.DataFrame:
    df = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol").is_in(["BTCUSDT", "ETHUSDT"]))
    return df.filter(pl.col("open_time").dt.year() == 2021).filter(pl.col("open_time").dt.month().is_between(4, 7))


def serve_klines(fake: FakeBinance, klines: pl.DataFrame) -> tuple[int, int]:
    for sym in ("BTCUSDT", "ETHUSDT"):
        fake.klines[(sym, "1h")] = kline_rows(klines.filter(pl.col("symbol") == sym).sort("open_time"), H)
    ms = klines["open_time"].dt.epoch("ms")
    return int(ms.min()), int(ms.max()) + H


def test_missing_spans() -> None:
    assert missing_spans({2, 3, 6}, 0, 9, 1) == [(0, 2), (4, 6), (7, 9)]
    assert missing_spans(set(), 0, 3, 1) == [(0, 3)]
    assert missing_spans({0, 1, 2}, 0, 3, 1) == []


async def test_backfill_resumes_and_fetches_only_what_is_missing(
    fake: FakeBinance, klines: pl.DataFrame, tmp_path: Path
) -> None:
    start, end = serve_klines(fake, klines)
    lake = open_lake(str(tmp_path / "lake"))
    rest = BinanceRest.from_url(fake.rest_url)
    syms = ["BTCUSDT", "ETHUSDT"]
    try:
        middle = start + 1500 * H
        first = await backfill(rest, lake, syms, Interval.H1, start, middle)
        assert all(n > 1400 for n in first.fetched.values())
        n_requests = len(fake.rest_log)
        progress: list[int] = []
        totals: list[int] = []
        second = await backfill(
            rest, lake, syms, Interval.H1, start, end, on_total=totals.append, on_progress=progress.append
        )
        new = fake.rest_log[n_requests:]
        # only the outage hours inside the first range (one request each) and the new part
        assert all(int(p["startTime"]) >= middle or int(p["endTime"]) < middle for _, p in new)
        assert second.already == first.fetched
        assert sum(progress) == totals[0]
        got = lake.read(syms, Interval.H1)
        cols = ["symbol", "open_time", "open", "close"]
        assert_frame_equal(got.select(cols), klines.sort("symbol", "open_time").select(cols))
        n_requests = len(fake.rest_log)
        third = await backfill(rest, lake, syms, Interval.H1, start, end)
        assert third.total == 0
        assert len(fake.rest_log) - n_requests == third.spans  # one request per known outage span
    finally:
        await rest.close()


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def run_cli(*args: str, cwd: Path) -> Result:
    """Run a command in a worker thread (it runs its own event loop) while the fake serves here."""
    env = {"COINCAST_DATA_DIR": str(cwd / "data")}
    return await asyncio.to_thread(CliRunner().invoke, cli(), list(args), env=env)


async def test_backfill_and_import_commands(fake: FakeBinance, klines: pl.DataFrame, tmp_path: Path) -> None:
    serve_klines(fake, klines)
    lake_dir = tmp_path / "lake"
    res = await run_cli(
        "backfill", "--symbols", "BTCUSDT", "--interval", "1h", "--start", "2021-05-01", "--end", "2021-05-03",
        "--lake", str(lake_dir), "--rest-url", fake.rest_url, cwd=tmp_path,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "BTCUSDT 1h: 48 fetched, 0 already there" in res.stdout
    assert open_lake(str(lake_dir)).read("BTCUSDT", "1h").height == 48
    store = open_store(f"duckdb:///{tmp_path / 'data' / 'coincast.db'}")  # the serving store got them too
    try:
        got = await store.history("BTCUSDT", Interval.H1, start_ms=0, end_ms=2**62, limit=1000)
    finally:
        await store.close()
    assert len(got) == 48 and got[0].open_ms == 1_619_827_200_000 and got[0].closed
    res = await run_cli(
        "backfill", "--symbols", "BTCUSDT", "--start", "2021-05-01", "--end", "2021-05-03",
        "--lake", str(lake_dir), "--rest-url", fake.rest_url, "--no-store", cwd=tmp_path,
    )  # fmt: skip
    assert res.exit_code == 0 and "0 fetched, 48 already there" in res.stdout

    csv = tmp_path / "BTCUSDT-1d-2024-01.csv"
    day = 86_400_000
    t0 = 1_704_067_200_000
    good = [f"{t0 + i * day},10,12,9,11,5,{t0 + (i + 1) * day - 1},55,3,2,22,0" for i in range(3)]
    csv.write_text("\n".join([*good, f"{t0 + 3 * day},10,8,9,11,5,0,55,3,2,22,0"]) + "\n")
    res = await run_cli("import", str(csv), "--lake", str(lake_dir), cwd=tmp_path)
    assert res.exit_code == 1
    assert f"{csv}:4: high 8.0 < max(open, close, low)" in res.stderr
    assert "3 candles imported, 1 bad rows" in res.stdout
    assert open_lake(str(lake_dir)).read("BTCUSDT", "1d").height == 3

    res = await run_cli("backfill", "--interval", "7m", "--no-store", cwd=tmp_path)
    assert isinstance(res.exception, InvalidInterval) and "unknown interval '7m'" in str(res.exception)
