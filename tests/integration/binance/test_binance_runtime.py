"""Normal flow end to end into the stored candles: fake Binance -> the embedded runtime -> DuckDB.

The runtime is the one ``coincast up`` runs, with ``source.kind = binance`` pointed at the fake
(registered here the way wiring registers it: ``SOURCES["binance"] = open_binance``). The
connection is dropped once mid-stream; after reconnect and REST repair the stored (closed) 1s
candles must equal the candles of every recorded trade. (1m closes only at the minute's end: the
1m equality is checked against the aggregator in ``test_binance_candles.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tests.fakes.binance_server import FakeBinance, Market

from coincast import wiring
from coincast.domain import Interval
from coincast.settings import load_settings
from coincast.sources.auto import open_binance

pytestmark = pytest.mark.integration


def truth(m: Market, iv: Interval) -> dict[int, tuple[float, float, float, float, float, int]]:
    order = np.lexsort((m.ids, m.times))
    t, p, q = m.times[order], m.prices[order], m.qtys[order]
    out = {}
    for bucket in np.unique(t // iv.ms):
        sel = (t // iv.ms) == bucket
        out[int(bucket) * iv.ms] = (
            p[sel][0],
            p[sel].max(),
            p[sel].min(),
            p[sel][-1],
            float(q[sel].sum()),
            int(sel.sum()),
        )
    return out


async def wait_until(cond: Callable[[], bool], timeout_s: float = 20) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():
            await asyncio.sleep(0.02)


async def test_binance_into_the_store_across_a_drop(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "binance" not in wiring.SOURCES:
        monkeypatch.setitem(wiring.SOURCES, "binance", open_binance)
    market = Market.from_parquet(shared_data / "trades_btcusdt.parquet", "BTCUSDT", start_ms=0)
    async with FakeBinance(shared_data / "binance_fixtures", [market], trades_per_tick=8, live_times=True) as fake:
        settings = load_settings(
            source__kind="binance", binance__ws_url=fake.ws_url, binance__rest_url=fake.rest_url,
            data_dir=tmp_path, symbols="BTCUSDT", stream__intervals="1s,1m", stream__grace_ms=300,
        )  # fmt: skip
        runtime = wiring.Runtime(settings)
        await runtime.start()
        try:
            await wait_until(lambda: market.cursor >= 600)
            fake.refuse_next(3)
            fake.drop_all()
            await wait_until(lambda: fake.done and runtime.source.health.connected)
            await wait_until(lambda: runtime.source.health.gaps_repaired >= 1)
            want_n = sum(1 for k in truth(market, Interval.S1))  # every 1s candle with trades
            async with asyncio.timeout(20):  # closed on exchange time (kline events), then written
                while len([c for c in await runtime.store.history(
                        "BTCUSDT", Interval.S1, start_ms=0, end_ms=2**62, limit=10_000) if c.trades]) < want_n:
                    await asyncio.sleep(0.1)
            assert runtime.failed() is None
        finally:
            await runtime.stop()
    store = wiring.open_store(settings.store_url)
    try:
        rows = await store.history("BTCUSDT", Interval.S1, start_ms=0, end_ms=2**62, limit=10_000)
        got = {c.open_ms: (c.open, c.high, c.low, c.close, c.volume, c.trades) for c in rows if c.trades}
        want = truth(market, Interval.S1)
        assert got.keys() == want.keys()
        for k, w in want.items():
            assert got[k][:5] == pytest.approx(w[:5]) and got[k][5] == w[5], k
    finally:
        await store.close()
