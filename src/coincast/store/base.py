"""Storage seams: candles (serving store) and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from coincast.domain import Candle, DeadLetter, FoldState, Interval


class CandleStore(Protocol):
    """Closed candles keyed by (symbol, interval, open_ms); every write is an idempotent upsert."""

    async def upsert(self, candles: Sequence[Candle]) -> int:
        """Insert or replace; returns the number of rows written."""
        ...

    async def history(
        self, symbol: str, interval: Interval, *, start_ms: int, end_ms: int, limit: int
    ) -> list[Candle]:
        """Candles with ``start_ms <= open_ms <= end_ms``, oldest first, the newest ``limit`` of them."""
        ...

    async def latest(self, symbol: str, interval: Interval) -> Candle | None: ...

    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> int: ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    async def save_fold(self, state: FoldState) -> None:
        """Replace the saved fold state (candles in progress, per-symbol ids and watermarks)."""
        ...

    async def load_fold(self) -> FoldState | None:
        """The last saved fold state, or None."""
        ...

    async def close(self) -> None: ...
