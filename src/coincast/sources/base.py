"""The Source seam: anything that produces market events for the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from coincast.domain import Clock, TradeBatch


class Source(Protocol):
    """A producer of trade batches.

    ``name`` is what ``/health`` shows (``sim``, ``binance``, ``replay``). ``clock`` is the time
    the stream processor should close candles by: the wall clock for live sources, a virtual one
    for replays.
    """

    name: str
    clock: Clock

    def events(self) -> AsyncIterator[TradeBatch]:
        """Yield batches until the source is exhausted or cancelled."""
        ...

    async def close(self) -> None: ...
