"""Test helpers for sources: a dead-letter sink that keeps items and an events collector."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import numpy as np

from coincast.domain import DeadLetter, TradeBatch
from coincast.sources.base import Source
from coincast.sources.binance import BinanceOptions
from coincast.sources.binance.repair import RepairOptions

# Short timeouts so fault tests finish in seconds.
FAST = BinanceOptions(
    stale_after_s=2.0,
    tick_s=0.05,
    backoff_initial_s=0.05,
    backoff_max_s=0.4,
    backoff_jitter_s=0.05,
    connect_timeout_s=2.0,
    repair=RepairOptions(poll_s=0.2, retry_s=0.05, retry_max_s=0.4, give_up_s=2.0),
)


class ListSink:
    """Dead-letter sink that keeps what it gets."""

    def __init__(self) -> None:
        self.items: list[DeadLetter] = []

    def put(self, item: DeadLetter) -> None:
        self.items.append(item)


class Collector:
    """Drains a source's events in the background and keeps every trade id per symbol."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.batches: list[TradeBatch] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for batch in self.source.events():
            self.batches.append(batch)

    def ids(self, symbol: str) -> np.ndarray:
        parts = [b.trade_id for b in self.batches if b.symbol == symbol]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    async def wait_for(self, cond: Callable[[], bool], timeout_s: float = 15.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not cond():
                if self.task.done():
                    self.task.result()
                    raise AssertionError("source ended early")
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.source.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
