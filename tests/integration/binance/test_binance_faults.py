"""Rotation, dead letters, run-time subscriptions and REST rate limits against the fake exchange."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
from tests.fakes.binance_server import ERR_418, ERR_429, FakeBinance, Market, kline_rows
from tests.fakes.collect import FAST, Collector, ListSink

from coincast.domain import Interval, InvalidRequest, ManualClock, SystemClock
from coincast.sources.binance import BinanceRest, BinanceSource, IpBanned

pytestmark = pytest.mark.integration


async def test_rotation_before_24h_is_make_before_break(fake: FakeBinance, make_source) -> None:
    clock = ManualClock(time.time_ns() // 1_000_000)
    src, _ = make_source(replace(FAST, rotate_after_s=24 * 3600 - 600), clock)
    col = Collector(src)
    try:
        await col.wait_for(lambda: len(col.ids("BTCUSDT")) >= 300)
        clock.advance(24 * 3600 * 1000 - 500_000)  # the connection is now 23 h 51 min old
        await col.wait_for(lambda: src.rotations == 1)
        assert fake.connections_total == 2
        await col.wait_for(lambda: len(fake.clients) == 1, 5)  # the old one is closed
        await col.wait_for(lambda: fake.done and all(len(col.ids(s)) == 2001 for s in fake.markets))
        for s, m in fake.markets.items():
            ids = col.ids(s)
            assert len(np.unique(ids)) == len(ids) and np.array_equal(np.sort(ids), m.ids)
        assert src.health.reconnects == 0 and src.health.gaps == 0
    finally:
        await col.stop()


def _agg(symbol: str = "BTCUSDT", **override: object) -> str:
    data = {"e": "aggTrade", "E": 1675759520848, "s": symbol, "a": 1, "p": "1632.46000000", "q": "0.34305000"}
    data |= {"f": 1, "l": 1, "T": 1675759520847, "m": False, "M": True}
    data |= override
    return orjson.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": data}).decode()


BAD_FRAMES = [
    ("invalid JSON", '{"stream": "btcusdt@aggTrade", "data": {'),
    ("invalid JSON", b"\xff\xfe not utf8"),
    ("expected a JSON object", "[1, 2, 3]"),
    ("unknown event type", '{"stream": "btcusdt@forceOrder", "data": {"e": "forceOrder", "E": 1}}'),
    ("unknown event type", "24hrTicker"),  # replaced by the real docs example below
    ("field p", _agg(p=1632.46)),  # number instead of string
    ("field a", _agg(a="226532")),  # string instead of integer
    ("field m", _agg(m="false")),
    ("field q", _agg(q="-0.5")),  # negative quantity
    ("field q", _agg(q="0.00000000")),  # a trade of nothing
    ("field p", _agg(p="0")),  # zero price
    ("field p", _agg(p="NaN")),
    ("field T", _agg(T=99)),  # 1970
    ("field s", _agg(s=None)),
    ("unknown symbol", _agg("XRPUSDT")),
    ("unsolicited control reply", '{"code": 2, "msg": "Invalid request: unknown variant", "id": 99}'),
    ("field k", '{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1672515782136, "s": "BTCUSDT"}}'),
]


async def test_bad_messages_go_to_dead_letters_and_nothing_valid_is_lost(
    fake: FakeBinance, make_source, shared_data: Path
) -> None:
    ticker = (shared_data / "binance_fixtures" / "ws" / "24hrTicker_docs_example.json").read_text()
    frames = [(why, ticker if raw == "24hrTicker" else raw) for why, raw in BAD_FRAMES]
    src, sink = make_source()
    col = Collector(src)
    try:
        await col.wait_for(lambda: len(col.ids("BTCUSDT")) >= 200)
        for _, raw in frames:
            await fake.inject(raw)
        depth = {"e": "depthUpdate", "E": 1672515782136, "s": "BTCUSDT", "U": 157, "u": 160}
        depth |= {"b": [["0.0024", "10"]], "a": [["0.0026", "100"]]}  # from the docs: a valid one
        await fake.inject(orjson.dumps({"stream": "btcusdt@depth", "data": depth}).decode())
        await col.wait_for(lambda: fake.done and all(len(col.ids(s)) == 2001 for s in fake.markets))
        await col.wait_for(lambda: len(sink.items) >= len(frames), 5)
        assert len(sink.items) == len(frames)
        for (why, _), item in zip(frames, sink.items, strict=True):
            assert why in item.reason, (why, item.reason)
            assert item.source == "binance" and item.recv_ms > 0
        assert src.health.detail["dead_letters"] == str(len(frames))
        for s, m in fake.markets.items():
            assert np.array_equal(np.sort(col.ids(s)), m.ids)
    finally:
        await col.stop()


async def test_subscribe_and_unsubscribe_at_run_time(fake: FakeBinance) -> None:
    sink, clock = ListSink(), SystemClock()
    rest = BinanceRest.from_url(fake.rest_url, clock=clock)
    src = BinanceSource(fake.ws_url, rest, ["BTCUSDT"], dead_letters=sink, clock=clock, options=FAST)
    col = Collector(src)
    try:
        await col.wait_for(lambda: len(col.ids("BTCUSDT")) >= 100)
        assert len(col.ids("ETHUSDT")) == 0
        await src.subscribe(["ETHUSDT"])
        await col.wait_for(lambda: len(col.ids("ETHUSDT")) > 0)
        subs = await src.list_subscriptions()
        assert "ethusdt@aggTrade" in subs and "btcusdt@aggTrade" in subs
        await src.unsubscribe(["BTCUSDT"])
        n_btc = len(col.ids("BTCUSDT"))
        await col.wait_for(lambda: fake.done)
        await col.wait_for(lambda: src.book.get("ETHUSDT") is not None)
        assert len(col.ids("BTCUSDT")) == n_btc  # nothing after the unsubscribe reply
        # six control requests at once: sent at <= 4 per second, so Binance's 5/s limit holds
        start = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(src.list_subscriptions() for _ in range(6)))
        assert all("ethusdt@aggTrade" in r for r in results)
        assert asyncio.get_running_loop().time() - start >= 0.9
        assert fake.rate_violations == 0 and src.health.reconnects == 0
    finally:
        await col.stop()


@pytest.fixture
def klines_1h(shared_data: Path) -> pl.DataFrame:
    return (
        pl.read_parquet(shared_data / "klines_1h.parquet")
        .filter(pl.col("symbol") == "BTCUSDT")
        .sort("open_time")
        .head(2500)
    )


async def test_rest_429_waits_retry_after_then_418_stops(fake: FakeBinance, klines_1h: pl.DataFrame) -> None:
    fake.klines[("BTCUSDT", "1h")] = kline_rows(klines_1h, Interval.H1.ms)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    rest = BinanceRest.from_url(fake.rest_url, sleep=sleep)
    start = int(klines_1h["open_time"][0].timestamp() * 1000)
    opens = [int(t.timestamp() * 1000) for t in klines_1h["open_time"]]
    end = opens[-1] + Interval.H1.ms
    try:
        fake.rest_faults.append((429, {"Retry-After": "7"}, ERR_429))
        pages = [p async for p in rest.klines("BTCUSDT", Interval.H1, start, end)]
        got = [c for p in pages for c in p]
        assert [len(p) for p in pages] == [1000, 1000, 500]
        assert slept == [7.0] and rest.rate_limited == 1
        assert [c.open_ms for c in got] == opens  # the recorded outage hours stay missing
        assert got[0].close == pytest.approx(klines_1h["close"][0])
        assert rest.used_weight == fake.used_weight

        n = len(fake.rest_log)
        fake.rest_faults.append((418, {"Retry-After": "120"}, ERR_418))
        with pytest.raises(IpBanned, match="418") as info:
            await rest.ping()
        assert info.value.retry_after_s == 120 and len(fake.rest_log) == n + 1  # no retry

        with pytest.raises(InvalidRequest, match="-1121"):
            await rest.agg_trades("NOPEUSDT", from_id=1)
        fake.rest_faults.extend([(503, {}, {"code": -1001, "msg": "Internal error"})] * 2)
        assert await rest.ping()  # 5xx is retried
    finally:
        await rest.close()


async def test_rest_pauses_near_the_weight_limit(fake: FakeBinance) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    clock = ManualClock(1_700_000_040_000 + 45_000)  # 45 s into a minute
    rest = BinanceRest.from_url(fake.rest_url, clock=clock, weight_limit=10, sleep=sleep)
    try:
        for _ in range(12):
            await rest.ping()
        assert slept and slept[0] == pytest.approx(15.0)
    finally:
        await rest.close()


async def test_sparse_ids_are_reported_not_chased_forever(shared_data: Path) -> None:
    """A server whose aggregate ids skip numbers (a sampled recording): every skip looks like a gap,
    REST cannot fill it, and the source must release the watermark with few requests."""
    market = Market.from_parquet(shared_data / "trades_btcusdt.parquet", "BTCUSDT", start_ms=time.time_ns() // 10**6)
    market.ids = market.ids * 2  # every other id is missing for good
    async with FakeBinance(shared_data / "binance_fixtures", [market]) as fake:
        clock = SystemClock()
        rest = BinanceRest.from_url(fake.rest_url, clock=clock)
        src = BinanceSource(fake.ws_url, rest, ["BTCUSDT"], dead_letters=ListSink(), clock=clock, options=FAST)
        col = Collector(src)
        try:
            await col.wait_for(lambda: fake.done and len(col.ids("BTCUSDT")) == len(market))
            await col.wait_for(lambda: src.watermark_ms() > 0 and not src.repairing, 10)
            assert np.array_equal(np.sort(col.ids("BTCUSDT")), market.ids)
            assert src.health.gaps >= 1000 and int(src.health.detail["gaps_unrepaired"]) >= 1
            assert len(fake.rest_log) < 200  # gaps are fetched together, not one request each
            assert src.watermark_ms() >= time.time_ns() // 10**6 - 5_000
        finally:
            await col.stop()


async def test_rest_down_during_repair_releases_the_watermark(fake: FakeBinance) -> None:
    clock = SystemClock()
    rest = BinanceRest.from_url(fake.rest_url, clock=clock, max_attempts=2)
    sink = ListSink()
    src = BinanceSource(fake.ws_url, rest, ["BTCUSDT", "ETHUSDT"], dead_letters=sink, clock=clock, options=FAST)
    col = Collector(src)
    try:
        await col.wait_for(lambda: len(col.ids("BTCUSDT")) >= 300)
        fake.rest_faults.extend(
            [(503, {}, {"code": -1001, "msg": "Internal error; unable to process your request."})] * 10**4
        )
        fake.refuse_next(10**6)
        fake.drop_all()
        await col.wait_for(lambda: not src.health.connected, 5)
        held = src.watermark_ms()
        await col.wait_for(lambda: fake.markets["BTCUSDT"].cursor >= 900)
        fake.refuse = 0
        await col.wait_for(lambda: fake.done and src.health.connected)
        await col.wait_for(lambda: src.watermark_ms() > held and not src.repairing, 10)  # released
        assert int(src.health.detail["gaps_unrepaired"]) >= 1 and "REST" in src.health.last_error
        got = col.ids("BTCUSDT")
        assert len(np.unique(got)) == len(got)  # what arrived arrived once
        assert set(fake.markets["BTCUSDT"].ids[-100:]) <= set(got)  # the live stream carried on
    finally:
        await col.stop()
