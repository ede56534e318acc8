"""In-process bus: bounded asyncio queues, one per (topic, group)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from prometheus_client import Counter, Gauge

BUS_PUBLISHED = Counter("coincast_bus_published_batches_total", "Batches published", ["topic"])
BUS_DEPTH = Gauge("coincast_bus_queue_depth", "Batches waiting per subscriber", ["topic", "group"])

_CLOSED = object()


class MemoryBus:
    """A :class:`~coincast.bus.base.Bus` inside one process.

    One FIFO queue per subscriber group keeps global (hence per-key) order. A topic with no
    subscriber drops what is published to it, like a log with nobody reading and no retention.

    Args:
        max_batches: bound of each subscriber queue; ``publish`` waits while it is full.
    """

    def __init__(self, max_batches: int = 1024) -> None:
        self._max = max_batches
        self._queues: dict[str, dict[str, asyncio.Queue[object]]] = {}
        self._closed = False

    async def publish(self, topic: str, key: str, batch: object) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        groups = self._queues.get(topic)
        if not groups:
            return
        for q in groups.values():
            await q.put(batch)
        BUS_PUBLISHED.labels(topic).inc()

    def subscribe(self, topic: str, group: str) -> AsyncIterator[list[object]]:
        """Register ``group`` now (so nothing published afterwards is missed) and return its stream."""
        groups = self._queues.setdefault(topic, {})
        if group in groups:
            raise ValueError(f"group {group!r} already subscribed to {topic!r}")
        q: asyncio.Queue[object] = asyncio.Queue(self._max)
        groups[group] = q
        return self._drain(topic, group, q)

    async def _drain(self, topic: str, group: str, q: asyncio.Queue[object]) -> AsyncIterator[list[object]]:
        depth = BUS_DEPTH.labels(topic, group)
        while True:
            first = await q.get()
            items = [first]
            while not q.empty():
                items.append(q.get_nowait())
            depth.set(q.qsize())
            done = False
            if _CLOSED in items:
                items = items[: items.index(_CLOSED)]
                done = True
            if items:
                yield items
            if done:
                return

    def depth(self, topic: str, group: str) -> int:
        return self._queues[topic][group].qsize()

    async def close(self) -> None:
        """Let every subscriber finish what is queued, then end its stream."""
        if self._closed:
            return
        self._closed = True
        for groups in self._queues.values():
            for q in groups.values():
                await q.put(_CLOSED)
