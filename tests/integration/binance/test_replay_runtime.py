"""``--source replay`` end to end: recorded trades -> the embedded runtime -> stored candles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from coincast import wiring
from coincast.domain import Interval
from coincast.settings import load_settings
from coincast.sources.auto import open_replay

pytestmark = pytest.mark.integration


async def test_replayed_trades_land_in_closed_candles(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "replay" not in wiring.SOURCES:
        monkeypatch.setitem(wiring.SOURCES, "replay", open_replay)
    trades = shared_data / "trades_btcusdt.parquet"
    settings = load_settings(
        source__kind="replay", source__replay_file=trades, source__replay_speed=0, data_dir=tmp_path,
        symbols="BTCUSDT", stream__intervals="1s,1m",
    )  # fmt: skip
    runtime = wiring.Runtime(settings)
    await runtime.start()
    try:
        async with asyncio.timeout(20):
            while runtime.source.health.detail.get("finished") != "true":  # the last batch was published
                await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    df = pl.read_parquet(trades).sort("trade_id")
    store = wiring.open_store(settings.store_url)
    try:
        (minute,) = await store.history("BTCUSDT", Interval.M1, start_ms=0, end_ms=2**62, limit=10)
        seconds = await store.history("BTCUSDT", Interval.S1, start_ms=0, end_ms=2**62, limit=1000)
    finally:
        await store.close()
    assert minute.closed and minute.trades == df.height
    assert (minute.open, minute.close) == (df["price"][0], df["price"][-1])
    assert minute.high == df["price"].max() and minute.low == df["price"].min()
    assert minute.volume == pytest.approx(df["qty"].sum())
    assert sum(c.trades for c in seconds) == df.height and all(c.closed for c in seconds)
