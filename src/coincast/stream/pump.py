"""Source -> bus, with the source's watermark carried in the stream itself.

Every published batch is stamped with the source's watermark; a symbol that had nothing to send
for a tick gets a heartbeat (an empty batch with the watermark), so the processor closes quiet
candles on time. Because the stamp travels *behind* the trades it covers (same queue or
partition), a consumer never closes a candle whose trades it has not read yet, however far the
source runs ahead (a replay, a simulator catching up, a slow consumer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace

from coincast.bus.base import TOPIC_TRADES, Bus
from coincast.domain import Clock, TradeBatch
from coincast.sources.base import Source


class SourcePump:
    """Moves batches from ``source`` to ``bus`` until the source ends or the pump is cancelled."""

    def __init__(self, source: Source, bus: Bus, symbols: Sequence[str], clock: Clock, tick_ms: int = 250) -> None:
        self._source = source
        self._bus = bus
        self._symbols = tuple(symbols)
        self._clock = clock
        self._tick_s = tick_ms / 1000
        self._stamped: dict[str, int] = {}
        self._in_hand = False  # a batch taken from the source but not yet published

    async def run(self) -> None:
        beats = asyncio.create_task(self._heartbeats(), name="pump-heartbeats")
        try:
            async for batch in self._source.events():
                self._in_hand = True  # set before any await: heartbeats must not overtake this batch
                wm = self._source.watermark_ms()
                await self._bus.publish(TOPIC_TRADES, batch.symbol, replace(batch, watermark_ms=wm))
                self._stamped[batch.symbol] = wm
                self._in_hand = False
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            if self._in_hand:
                continue
            wm = self._source.watermark_ms()
            for sym in self._symbols:
                if self._stamped.get(sym, 0) < wm:
                    self._stamped[sym] = wm
                    await self._bus.publish(TOPIC_TRADES, sym, TradeBatch.heartbeat(sym, wm, self._clock.now_ms()))
