"""Replay of recorded trades and candles: order, completeness, pacing, watermark, bad rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.fakes.collect import ListSink

from coincast.domain import InvalidRequest, ManualClock, TradeBatch
from coincast.sources.replay import END_ADVANCE_MS, ReplaySource

T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)


def trades_file(tmp_path: Path, n: int = 50, seed: int = 0) -> tuple[Path, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    df = pl.DataFrame(
        {
            "trade_id": np.arange(1000, 1000 + n),
            "price": 100 + rng.normal(0, 1, n).cumsum(),
            "qty": rng.uniform(0.01, 1, n),
            "time": T0 + np.sort(rng.integers(0, 120_000, n)),
            "is_buyer_maker": rng.random(n) < 0.5,
        }
    ).with_columns(pl.col("time").cast(pl.Datetime("ms", "UTC")))
    path = tmp_path / "BTCUSDT-trades.parquet"
    df.write_parquet(path)
    return path, df


async def collect(src: ReplaySource) -> list[TradeBatch]:
    async with asyncio.timeout(20):
        return [b async for b in src.events()]


async def test_trades_replay_as_fast_as_possible_in_time_order(tmp_path: Path) -> None:
    path, df = trades_file(tmp_path)
    src = ReplaySource(path, 0, dead_letters=ListSink(), clock=ManualClock(5), chunk=7)
    marks: list[int] = []
    batches = []
    async with asyncio.timeout(20):
        async for b in src.events():
            batches.append(b)
            marks.append(src.watermark_ms())
    assert all(b.symbol == "BTCUSDT" and b.recv_ms == 5 for b in batches) and len(batches) == 9
    assert len(batches[-1]) == 0 and batches[-1].watermark_ms == src.watermark_ms()  # the closing heartbeat
    ids = np.concatenate([b.trade_id for b in batches])
    assert np.array_equal(ids, df["trade_id"].to_numpy())
    times = np.concatenate([b.event_ms for b in batches])
    assert np.all(np.diff(times) >= 0)
    assert marks == sorted(marks)
    assert src.watermark_ms() == int(times[-1]) + END_ADVANCE_MS
    assert src.health.detail["progress"] == "50/50" and src.health.messages == 50


async def test_paced_replay_follows_the_speed(tmp_path: Path) -> None:
    path, df = trades_file(tmp_path)
    span_s = (df["time"].dt.epoch("ms").max() - df["time"].dt.epoch("ms").min()) / 1000
    speed = span_s / 0.5  # the whole file in about half a second
    src = ReplaySource(path, speed, dead_letters=None, clock=ManualClock())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    batches = await collect(src)
    elapsed = loop.time() - t0
    assert sum(len(b) for b in batches) == 50
    assert elapsed >= 0.4  # paced: never faster than the speed allows
    assert len(batches) > 1


async def test_candles_replay_rebuilds_ohlcv(tmp_path: Path, shared_data: Path) -> None:
    kl = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol").is_in(["BTCUSDT", "ETHUSDT"]))
    kl = kl.sort("open_time").head(200)
    path = tmp_path / "candles.parquet"
    kl.write_parquet(path)
    batches = await collect(ReplaySource(path, 0, dead_letters=ListSink(), clock=ManualClock()))
    for sym in ("BTCUSDT", "ETHUSDT"):
        sel = [b for b in batches if b.symbol == sym]
        t = pl.DataFrame(
            {
                "t": np.concatenate([b.event_ms for b in sel]),
                "p": np.concatenate([b.price for b in sel]),
                "q": np.concatenate([b.qty for b in sel]),
            }
        )
        rebuilt = t.group_by(pl.col("t") // 3_600_000 * 3_600_000, maintain_order=True).agg(
            open=pl.col("p").first(), high=pl.col("p").max(), low=pl.col("p").min(), close=pl.col("p").last(),
            volume=pl.col("q").sum(),
        )  # fmt: skip
        want = kl.filter(pl.col("symbol") == sym).sort("open_time")
        assert rebuilt["t"].to_list() == want["open_time"].dt.epoch("ms").to_list()
        for col in ("open", "high", "low", "close", "volume"):
            assert np.allclose(rebuilt[col].to_numpy(), want[col].to_numpy()), col


async def test_bad_trade_rows_go_to_dead_letters(tmp_path: Path) -> None:
    path, df = trades_file(tmp_path, n=10)
    df = df.with_columns(pl.when(pl.col("trade_id") == 1003).then(-5.0).otherwise(pl.col("price")).alias("price"))
    df.write_parquet(path)
    sink = ListSink()
    batches = await collect(ReplaySource(path, 0, dead_letters=sink, clock=ManualClock()))
    assert sum(len(b) for b in batches) == 9
    assert len(sink.items) == 1 and "row 4" in sink.items[0].reason


async def test_csv_klines_replay_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "ETHUSDT-1m-2024-03.csv"
    f.write_text(
        "\n".join(f"{T0 + i * 60_000},10,11,9,10.5,2,{T0 + i * 60_000 + 59_999},21,3,1,10.5,0" for i in range(5))
    )
    batches = await collect(ReplaySource(f, 0, dead_letters=ListSink(), clock=ManualClock()))
    assert sum(len(b) for b in batches) == 20 and batches[0].symbol == "ETHUSDT"
    with pytest.raises(InvalidRequest, match="no such file"):
        ReplaySource(tmp_path / "nope.parquet", 1, dead_letters=None, clock=ManualClock())
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(f, -1, dead_letters=None, clock=ManualClock())
