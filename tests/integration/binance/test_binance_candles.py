"""End to end into candles: live trades -> BinanceSource -> CandleAggregator, across an outage.

The fake market stamps trades with the wall clock as it releases them, like the exchange. The
client is cut off (connection dropped, or left open but silent until the watchdog fires) for
longer than the aggregator's grace period while the market moves on; the missed trades come
back over REST and, because the watermark was held, none of them is late:
the 1s and 1m candles equal the ones computed from every recorded trade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tests.fakes.binance_server import FakeBinance, Market
from tests.fakes.collect import FAST, ListSink

from coincast.domain import Candle, Interval, SystemClock
from coincast.sources.binance import BinanceRest, BinanceSource
from coincast.stream.candles import CandleAggregator

pytestmark = pytest.mark.integration

GRACE_MS = 400


def truth(m: Market, step_ms: int) -> dict[int, tuple[float, float, float, float, float, int]]:
    order = np.lexsort((m.ids, m.times))
    t, p, q = m.times[order], m.prices[order], m.qtys[order]
    out = {}
    for bucket in np.unique(t // step_ms):
        sel = (t // step_ms) == bucket
        pp = p[sel]
        out[int(bucket) * step_ms] = (pp[0], pp.max(), pp.min(), pp[-1], float(q[sel].sum()), int(sel.sum()))
    return out


async def wait_until(cond: Callable[[], bool]) -> None:
    while not cond():
        await asyncio.sleep(0.01)


ERR_429 = (429, {"Retry-After": "1"}, {"code": -1003, "msg": "Too much request weight used; current limit is 6000 "
                                                        "request weight per 1 MINUTE."})
ERR_503 = (503, {}, {"code": -1001, "msg": "Internal error; unable to process your request."})


@pytest.mark.parametrize("fault", ["drop", "stall", "silent_reconnect_429", "drop_during_repair", "two_drops"])
async def test_outage_longer_than_grace_leaves_candles_complete(shared_data: Path, fault: str) -> None:
    """Each fault keeps the client away well over the grace period; none may close a candle early.

    ``silent_reconnect_429`` is the sequence seen on the real exchange: the socket drops, reconnects
    are refused, the next connection is accepted but delivers nothing (for less than the watchdog
    limit), and REST answers the first gap-repair requests with 429 and 503.
    """
    market = Market.from_parquet(shared_data / "trades_btcusdt.parquet", "BTCUSDT", start_ms=0)
    agg = CandleAggregator([Interval.S1, Interval.M1], GRACE_MS)
    closed: dict[tuple[Interval, int], Candle] = {}
    async with FakeBinance(shared_data / "binance_fixtures", [market], trades_per_tick=8, live_times=True) as fake:
        clock = SystemClock()
        rest = BinanceRest.from_url(fake.rest_url, clock=clock)
        options = replace(FAST, stale_after_s=1.0 if fault == "stall" else 2.0)
        src = BinanceSource(fake.ws_url, rest, ["BTCUSDT"], dead_letters=ListSink(), clock=clock, options=options)

        async def tick() -> None:  # the stream processor advances the watermark on its own clock
            while True:
                for u in agg.advance(src.watermark_ms()):
                    closed[(u.candle.interval, u.candle.open_ms)] = u.candle
                await asyncio.sleep(0.02)

        async def outage() -> None:  # keep the client away ~1.5 s (well over the grace)
            await wait_until(lambda: market.cursor >= 500)
            if fault == "drop":
                fake.refuse_next(10**6)
                fake.drop_all()
                await wait_until(lambda: market.cursor >= 1700)
                fake.refuse = 0
            elif fault == "stall":  # the connection stays open but nothing comes: only the watchdog notices
                fake.silent = True
                await wait_until(lambda: src.health.reconnects >= 1)
                fake.silent = False
            elif fault == "silent_reconnect_429":
                fake.rest_faults.extend([ERR_429, ERR_503, ERR_429])
                fake.refuse_next(3)
                fake.silent = True  # the accepted connection stays silent, shorter than the watchdog
                fake.drop_all()
                await wait_until(lambda: src.health.connected and src.health.reconnects >= 1)
                await wait_until(lambda: market.cursor >= 1200)
                fake.silent = False
            elif fault == "drop_during_repair":
                fake.rest_faults.extend([ERR_429])
                fake.refuse_next(2)
                fake.drop_all()
                await wait_until(lambda: src.repairing and src.health.connected)
                fake.drop_all()  # again, while REST is refilling the first outage
                await wait_until(lambda: market.cursor >= 1500)
            else:  # two drops within one minute
                fake.drop_all()
                await wait_until(lambda: src.health.connected and market.cursor >= 900)
                fake.refuse_next(2)
                fake.drop_all()

        tasks = [asyncio.create_task(tick()), asyncio.create_task(outage())]
        try:
            async with asyncio.timeout(30):
                async for batch in src.events():
                    assert agg.add(batch).late is None, "a trade arrived after its candle closed"
                    if fake.done and agg.stats.trades >= len(market):
                        break
                await wait_until(lambda: not src.repairing)  # its bookkeeping done too
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await src.close()
    for u in agg.flush():
        closed[(u.candle.interval, u.candle.open_ms)] = u.candle
    assert agg.stats.late_trades == 0 and agg.stats.trades == len(market)
    assert src.health.gaps >= 1 and src.health.gaps_repaired >= 1
    for iv in (Interval.S1, Interval.M1):
        want = truth(market, iv.ms)
        got = {k[1]: (c.open, c.high, c.low, c.close, c.volume, c.trades) for k, c in closed.items() if k[0] == iv}
        got = {k: v for k, v in got.items() if v[5]}  # quiet seconds close as empty candles
        assert got.keys() == want.keys(), iv
        for k in want:
            assert got[k][:4] == pytest.approx(want[k][:4]) and got[k][4] == pytest.approx(want[k][4])
            assert got[k][5] == want[k][5]
