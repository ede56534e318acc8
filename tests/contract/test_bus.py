"""The Bus contract on every backend: in-process and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
from tests.factories import T0

from coincast.bus.base import Bus
from coincast.bus.codec import decode, encode
from coincast.domain import Candle, Interval, MalformedMessage, TradeBatch


def batch(symbol: str, start_id: int, n: int = 5) -> TradeBatch:
    ids = np.arange(start_id, start_id + n, dtype=np.int64)
    return TradeBatch(symbol, ids, T0 + ids, 100.0 + ids * 0.5, np.full(n, 0.25), ids % 2 == 0, recv_ms=T0)


@pytest.fixture(params=["memory", "kafka"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        from coincast.bus.memory import MemoryBus

        b: Bus = MemoryBus(max_batches=64)
    else:
        from coincast.bus.kafka import KafkaBus

        kb = KafkaBus(request.getfixturevalue("kafka_bootstrap"), prefix=f"t{uuid.uuid4().hex[:8]}.")
        kb.ensure_topics("trades")
        b = kb
    yield b
    await b.close()


async def collect(sub: AsyncIterator[list[object]], n: int, timeout: float = 20.0) -> list[object]:
    got: list[object] = []

    async def run() -> None:
        async for items in sub:
            got.extend(items)
            if len(got) >= n:
                return

    await asyncio.wait_for(run(), timeout)
    return got


async def test_groups_get_every_batch_in_order_per_key(bus: Bus) -> None:
    a, b = bus.subscribe("trades", "ga"), bus.subscribe("trades", "gb")
    sent = [batch(sym, i * 10) for i in range(20) for sym in ("BTCUSDT", "ETHUSDT")]
    for x in sent:
        await bus.publish("trades", x.symbol, x)
    for sub in (a, b):
        got = await collect(sub, len(sent))
        assert len(got) == len(sent)
        for sym in ("BTCUSDT", "ETHUSDT"):
            want_ids = [x.trade_id.tolist() for x in sent if x.symbol == sym]
            got_ids = [x.trade_id.tolist() for x in got if isinstance(x, TradeBatch) and x.symbol == sym]
            assert got_ids == want_ids


async def test_payload_round_trips_unchanged(bus: Bus) -> None:
    sub = bus.subscribe("trades", "g")
    x = batch("SOLUSDT", 7, n=1000)
    await bus.publish("trades", x.symbol, x)
    (got,) = await collect(sub, 1)
    assert isinstance(got, TradeBatch) and got.symbol == "SOLUSDT" and got.recv_ms == T0
    for col in ("trade_id", "event_ms", "price", "qty", "is_buyer_maker"):
        np.testing.assert_array_equal(getattr(got, col), getattr(x, col))


def test_codec_candles_and_garbage() -> None:
    c = Candle("BTCUSDT", Interval.M1, T0, 1.0, 2.0, 0.5, 1.5, 3.0, 4.5, 7, 1.0, 1.5, False)
    assert decode(encode([c])) == [c]
    for bad in (b"", b"X123", b"T\x05\x00\x00\x00{bad}", encode(batch("BTCUSDT", 0))[:-3], b"C[{}]"):
        with pytest.raises(MalformedMessage):
            decode(bad)


async def test_kafka_sets_garbage_aside_and_keeps_going(kafka_bootstrap: str) -> None:
    from confluent_kafka import Producer

    from coincast.bus.kafka import KafkaBus
    from coincast.domain import DeadLetter

    class Sink:
        def __init__(self) -> None:
            self.items: list[DeadLetter] = []

        def put(self, item: DeadLetter) -> None:
            self.items.append(item)

    sink = Sink()
    prefix = f"g{uuid.uuid4().hex[:8]}."
    kb = KafkaBus(kafka_bootstrap, prefix=prefix, dead_letters=sink)
    kb.ensure_topics("trades")
    sub = kb.subscribe("trades", "g")
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    await kb.publish("trades", "BTCUSDT", batch("BTCUSDT", 0))
    await kb.flush()
    raw.produce(prefix + "trades", b"not a payload", key=b"BTCUSDT")
    raw.flush(10)
    await kb.publish("trades", "BTCUSDT", batch("BTCUSDT", 5))
    got = await collect(sub, 2)
    await kb.close()
    assert [x.trade_id[0] for x in got if isinstance(x, TradeBatch)] == [0, 5]
    assert len(sink.items) == 1 and sink.items[0].source == "kafka" and "unknown bus payload" in sink.items[0].reason
