"""Live candle fan-out to serve workers, on the bus and on Redis: every burst, newest warm-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.factories import T0

from coincast.domain import Candle, Interval
from coincast.roles import BusFanout, CandleFanout


def candle(i: int, symbol: str = "BTCUSDT", closed: bool = True) -> Candle:
    return Candle(symbol, Interval.M1, T0 + i * 60_000, 1.0 + i, 2.0 + i, 0.5, 1.5 + i, 3.0, 4.5, 7, 1.0, 1.5, closed)


@pytest.fixture(params=["bus", "redis"])
async def fanout(request: pytest.FixtureRequest) -> AsyncIterator[tuple[CandleFanout, bool]]:
    if request.param == "bus":
        from coincast.bus.memory import MemoryBus

        bus = MemoryBus()
        yield BusFanout(bus), False
        await bus.close()
    else:
        from coincast.store.redis import RedisFanout

        f = RedisFanout.from_url(request.getfixturevalue("redis_url"), prefix="test:")
        yield f, True
        await f.close()


async def test_subscribers_get_every_burst(fanout: tuple[CandleFanout, bool]) -> None:
    f, _ = fanout
    got: list[Candle] = []
    sub = f.subscribe()
    first = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0.2)  # let the subscription register (pub/sub keeps no history)
    bursts = [[candle(0), candle(1, closed=False)], [candle(1), candle(0, "ETHUSDT")]]
    for b in bursts:
        await f.publish(b)
    got.extend(await asyncio.wait_for(first, 5))
    while len(got) < 4:
        got.extend(await asyncio.wait_for(anext(sub), 5))
    assert sorted(got, key=lambda c: (c.symbol, c.open_ms, c.closed)) == sorted(
        [c for b in bursts for c in b], key=lambda c: (c.symbol, c.open_ms, c.closed))
    await sub.aclose()  # type: ignore[attr-defined]


async def test_latest_warms_a_late_worker(fanout: tuple[CandleFanout, bool]) -> None:
    f, keeps_latest = fanout
    await f.publish([candle(0), candle(1, closed=False)])
    await f.publish([candle(1), candle(5, "SOLUSDT")])
    latest = await f.latest()
    if keeps_latest:
        assert sorted((c.symbol, c.open_ms, c.closed) for c in latest) == [
            ("BTCUSDT", T0 + 60_000, True), ("SOLUSDT", T0 + 300_000, True)]
    else:
        assert latest == []
