"""The Source seam: anything that produces market events for the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from coincast.domain import DeadLetter, TradeBatch


class Source(Protocol):
    """A producer of trade batches.

    ``name`` is what ``/health`` shows (``sim``, ``binance``, ``replay``, ``auto``); ``health`` is
    updated by the source as it runs.
    """

    name: str
    health: SourceHealth

    def watermark_ms(self) -> int:
        """Event time (ms) before which every trade has been delivered.

        The stream processor closes a candle only once the watermark passes its end plus the
        grace period. Live sources return the wall clock while connected and hold it at the last
        complete point while disconnected or repairing a gap, so repaired trades are not late.
        Replays return their virtual time.
        """
        ...

    def events(self) -> AsyncIterator[TradeBatch]:
        """Yield batches until the source is exhausted or cancelled."""
        ...

    async def close(self) -> None: ...


class DeadLetterSink(Protocol):
    """Where malformed or unknown messages go, with the reason; never blocks, never raises."""

    def put(self, item: DeadLetter) -> None: ...


@dataclass
class SourceHealth:
    """What a source tells ``/health``: mutable, owned by the source, read by the API.

    Times are epoch ms (0 = never). ``gaps`` counts gaps found, ``gaps_repaired`` those filled.
    """

    name: str
    simulated: bool = False
    connected: bool = False
    last_message_ms: int = 0
    stale_since_ms: int = 0
    reconnects: int = 0
    gaps: int = 0
    gaps_repaired: int = 0
    last_error: str = ""
    messages: int = 0
    detail: dict[str, str] = field(default_factory=dict)
