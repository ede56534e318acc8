"""The in-process bus: order, fan-out to groups, backpressure, bursts, close."""

from __future__ import annotations

import asyncio

import pytest

from coincast.bus.memory import MemoryBus


async def test_every_group_gets_everything_in_order() -> None:
    bus = MemoryBus(max_batches=100)
    a, b = bus.subscribe("t", "a"), bus.subscribe("t", "b")
    for i in range(50):
        await bus.publish("t", f"k{i % 3}", i)
    await bus.close()
    got_a = [x async for items in a for x in items]
    got_b = [x async for items in b for x in items]
    assert got_a == got_b == list(range(50))


async def test_bursts_arrive_as_one_list() -> None:
    bus = MemoryBus(max_batches=100)
    sub = bus.subscribe("t", "g")
    for i in range(10):
        await bus.publish("t", "k", i)
    first = await anext(sub)
    assert first == list(range(10))


async def test_publish_waits_while_the_queue_is_full() -> None:
    bus = MemoryBus(max_batches=2)
    sub = bus.subscribe("t", "g")
    await bus.publish("t", "k", 1)
    await bus.publish("t", "k", 2)
    blocked = asyncio.create_task(bus.publish("t", "k", 3))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # backpressure: the producer waits, nothing is dropped
    assert await anext(sub) == [1, 2]
    await asyncio.wait_for(blocked, 1)
    assert await anext(sub) == [3]


async def test_duplicate_group_and_publish_after_close() -> None:
    bus = MemoryBus()
    bus.subscribe("t", "g")
    with pytest.raises(ValueError, match="already subscribed"):
        bus.subscribe("t", "g")
    await bus.close()
    with pytest.raises(RuntimeError):
        await bus.publish("t", "k", 1)
