"""The speed layer's loop: trade batches from the bus -> candles -> sinks.

Two tasks share one :class:`CandleAggregator` on the event loop (no locks needed: neither
awaits while folding): the consumer folds every burst of batches the bus hands over, and the
ticker advances the watermark so quiet candles close on time. Sinks get candle updates
synchronously and must not block; anything slow (disk, network) is their own task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Histogram

from coincast.domain import TradeBatch
from coincast.stream.candles import CandleAggregator, CandleUpdate

log = logging.getLogger(__name__)

TRADES_IN = Counter("coincast_stream_trades_total", "Trades folded into candles", ["symbol"])
TRADES_LATE = Counter("coincast_stream_late_trades_total", "Trades too late for their candle")
TRADES_DUP = Counter("coincast_stream_duplicate_trades_total", "Duplicate trade ids dropped")
CANDLES_CLOSED = Counter("coincast_stream_candles_closed_total", "Candles closed", ["interval"])
LATENCY = Histogram(
    "coincast_stream_batch_latency_seconds", "Receive-to-candle latency of a trade batch",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class CandleSink(Protocol):
    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        """Take updates (in progress and closed); must return quickly and never raise on data."""
        ...


@dataclass(slots=True)
class Rates:
    """Event rates over the last few seconds, for ``/health``."""

    trades_per_s: float = 0.0
    candles_per_s: float = 0.0


class StreamProcessor:
    """Runs the fold.

    Args:
        aggregator: the candle fold.
        batches: the bus subscription (lists of :class:`TradeBatch`).
        watermark: returns the event time before which every trade has been delivered (embedded
            mode); None when watermarks travel in the batches themselves (a broker between roles).
        sinks: receivers of candle updates, called in order.
        tick_ms: how often the watermark is advanced.
        now_ms: wall clock for latency measurements.
    """

    def __init__(
        self,
        aggregator: CandleAggregator,
        batches: AsyncIterator[list[object]],
        watermark: Callable[[], int] | None,
        sinks: Sequence[CandleSink],
        *,
        tick_ms: int = 250,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.aggregator = aggregator
        self._batches = batches
        self._watermark = watermark
        self._sinks = list(sinks)
        self._tick_s = tick_ms / 1000
        self._now_ms = now_ms
        self.rates = Rates()
        self._rate_mark = (time.monotonic(), 0, 0)
        self.malformed = 0

    def add_sink(self, sink: CandleSink) -> None:
        self._sinks.append(sink)

    async def run(self) -> None:
        """Consume until the bus ends, then close what is due. Cancelling stops both tasks."""
        ticker = asyncio.create_task(self._tick_forever(), name="stream-ticker")
        try:
            async for items in self._batches:
                self._fold(items)
        finally:
            ticker.cancel()
            self.tick()

    def _fold(self, items: list[object]) -> None:
        updates: list[CandleUpdate] = []
        stats = self.aggregator.stats
        late0, dup0 = stats.late_trades, stats.duplicate_trades
        now = self._now_ms()
        for item in items:
            if not isinstance(item, TradeBatch):
                self.malformed += 1
                log.warning("stream: ignoring a non-trade item of type %s", type(item).__name__)
                continue
            if len(item):
                res = self.aggregator.add(item)
                updates.extend(res.updates)
                TRADES_IN.labels(item.symbol).inc(len(item) - (len(res.late) if res.late is not None else 0))
                if item.recv_ms:
                    LATENCY.observe(max(0, now - item.recv_ms) / 1000)
            if item.watermark_ms:
                updates.extend(self.aggregator.advance(item.watermark_ms, item.symbol))
        if stats.late_trades > late0:
            TRADES_LATE.inc(stats.late_trades - late0)
        if stats.duplicate_trades > dup0:
            TRADES_DUP.inc(stats.duplicate_trades - dup0)
        if self._watermark is not None:
            updates.extend(self.aggregator.advance(self._watermark()))
        self._emit(updates)

    def tick(self) -> None:
        """Advance the watermark once (closing quiet candles) and refresh the rates."""
        if self._watermark is not None:
            self._emit(self.aggregator.advance(self._watermark()))
        t, trades0, closed0 = self._rate_mark
        now = time.monotonic()
        if now - t >= 2.0:
            s = self.aggregator.stats
            self.rates = Rates((s.trades - trades0) / (now - t), (s.candles_closed - closed0) / (now - t))
            self._rate_mark = (now, s.trades, s.candles_closed)

    def flush(self) -> None:
        """Close every open candle now (the end of a finite replay)."""
        self._emit(self.aggregator.flush())

    def _emit(self, updates: list[CandleUpdate]) -> None:
        if not updates:
            return
        for u in updates:
            if u.candle.closed:
                CANDLES_CLOSED.labels(u.candle.interval.value).inc()
        for sink in self._sinks:
            sink.on_candles(updates)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            self.tick()
