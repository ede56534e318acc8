"""The Bus seam: topics of batches, ordered per key, consumed by named groups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

TOPIC_TRADES = "trades"
TOPIC_CANDLES = "candles"


class Bus(Protocol):
    """Carries batches between roles.

    ``publish`` blocks (backpressure) while a subscriber's bounded queue is full. Every group
    subscribed to a topic receives every batch; within a key (symbol) order is preserved.
    ``subscribe`` yields lists: all batches available at that moment (at least one), so a
    consumer handles a burst in one step instead of one task switch per batch.
    """

    async def publish(self, topic: str, key: str, batch: object) -> None: ...

    def subscribe(self, topic: str, group: str) -> AsyncIterator[list[object]]: ...

    async def close(self) -> None: ...
