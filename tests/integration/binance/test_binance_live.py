"""The live Binance source against the fake exchange: normal flow, drops, refusals, silence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.fakes.binance_server import FakeBinance
from tests.fakes.collect import FAST, Collector

from coincast.domain import Interval

pytestmark = pytest.mark.integration


def minute_candles(batches: list, symbol: str) -> pl.DataFrame:
    """1m OHLCV from trades in trade-id order (what the candle aggregator computes)."""
    sel = [b for b in batches if b.symbol == symbol]
    df = pl.DataFrame(
        {
            "id": np.concatenate([b.trade_id for b in sel]),
            "t": np.concatenate([b.event_ms for b in sel]),
            "p": np.concatenate([b.price for b in sel]),
            "q": np.concatenate([b.qty for b in sel]),
        }
    ).sort("id")
    return (
        df.with_columns(open_ms=pl.col("t") // Interval.M1.ms * Interval.M1.ms)
        .group_by("open_ms", maintain_order=True)
        .agg(
            pl.col("p").first().alias("open"),
            pl.col("p").max().alias("high"),
            pl.col("p").min().alias("low"),
            pl.col("p").last().alias("close"),
            pl.col("q").sum().alias("volume"),
            pl.len().alias("trades"),
        )
    )


def truth_candles(fake: FakeBinance, symbol: str) -> pl.DataFrame:
    m = fake.markets[symbol]

    class B:  # the recorded trades as one batch-like record
        trade_id, event_ms, price, qty = m.ids, m.times, m.prices, m.qtys

    B.symbol = symbol  # type: ignore[attr-defined]
    return minute_candles([B], symbol)


async def test_normal_flow_delivers_every_trade_once(fake: FakeBinance, make_source) -> None:
    src, sink = make_source()
    col = Collector(src)
    try:
        await col.wait_for(lambda: fake.done and all(len(col.ids(s)) == 2001 for s in fake.markets))
        for s, m in fake.markets.items():
            ids = col.ids(s)
            assert np.array_equal(np.sort(ids), m.ids), s
            assert len(np.unique(ids)) == len(ids)
            assert_frame_equal(minute_candles(col.batches, s), truth_candles(fake, s), rel_tol=1e-12)
        assert sink.items == []
        assert src.health.connected and src.health.gaps == 0
        assert src.health.messages > 4000
        assert src.book["BTCUSDT"].ask > src.book["BTCUSDT"].bid
        assert src.kline_mismatches == 0
        assert all(len(b) >= 1 for b in col.batches) and len(col.batches) < 4002  # batched, not 1:1
        assert src.watermark_ms() > 0
    finally:
        await col.stop()


@pytest.mark.parametrize("stream", ["aggTrade", "trade"])
async def test_drop_mid_stream_reconnects_and_repairs_the_gap(fake: FakeBinance, make_source, stream: str) -> None:
    src, sink = make_source(replace(FAST, stream=stream))
    col = Collector(src)
    try:
        await col.wait_for(lambda: len(col.ids("BTCUSDT")) >= 400)
        fake.refuse_next(10**6)  # stay away while the market moves on
        fake.drop_all()
        await col.wait_for(lambda: not src.health.connected, 5)
        held = src.watermark_ms()
        await col.wait_for(lambda: fake.markets["BTCUSDT"].cursor >= 1200)
        assert src.watermark_ms() == held  # held while disconnected
        assert not src.health.connected and len(col.ids("BTCUSDT")) < 1200
        fake.refuse = 0
        await col.wait_for(lambda: fake.done and all(len(col.ids(s)) == 2001 for s in fake.markets))
        for s, m in fake.markets.items():
            assert np.array_equal(np.sort(col.ids(s)), m.ids)
            assert_frame_equal(minute_candles(col.batches, s), truth_candles(fake, s), rel_tol=1e-12)
        assert src.health.reconnects >= 1
        assert src.health.gaps >= 1 and src.health.gaps_repaired >= 1
        endpoint = "/api/v3/aggTrades" if stream == "aggTrade" else "/api/v3/historicalTrades"
        assert any(p == endpoint for p, _ in fake.rest_log)
        assert sink.items == []
        await col.wait_for(lambda: src.watermark_ms() > held, 5)  # released once repaired
    finally:
        await col.stop()


async def test_refused_connections_back_off_then_recover(fake: FakeBinance, make_source) -> None:
    fake.refuse_next(5)
    src, _ = make_source()
    col = Collector(src)
    try:
        await col.wait_for(lambda: fake.done and len(col.ids("BTCUSDT")) == 2001)
        assert len(fake.refused) == 5
        sleeps = list(src.backoff_history)[:5]  # exponential growth plus jitter, capped at 0.4 s
        assert len(sleeps) == 5 and sleeps[0] < 0.1 <= sleeps[1] < 0.2 <= sleeps[2] < sleeps[3] <= sleeps[4] <= 0.4
        waits = np.diff([*fake.refused, fake.handshakes[5]])
        assert waits.sum() >= sum(sleeps) - 0.05  # the server saw the client wait that long
        assert np.array_equal(np.sort(col.ids("BTCUSDT")), fake.markets["BTCUSDT"].ids)
        assert "503" in src.health.last_error or src.health.connected
    finally:
        await col.stop()


async def test_silent_server_trips_the_watchdog(fake: FakeBinance, make_source) -> None:
    fake.silent = True
    src, _ = make_source(replace(FAST, stale_after_s=0.3))
    col = Collector(src)
    try:
        await col.wait_for(lambda: fake.connections_total >= 3, 10)
        assert src.health.stale_since_ms > 0
        assert "no message" in src.health.last_error
        assert src.health.reconnects >= 2
        fake.silent = False
        fake.markets["BTCUSDT"].cursor = 0
        fake.markets["ETHUSDT"].cursor = 0
        await col.wait_for(lambda: len(col.ids("BTCUSDT")) == 2001)
        assert src.health.stale_since_ms == 0 and src.health.connected
    finally:
        await col.stop()
