"""Storage seams: candles (serving store) and dead letters."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from coincast.domain import Candle, DeadLetter, FoldState, Interval

#: Column order of candle rows in every store (``open_time`` is ``Candle.open_ms``).
CANDLE_COLUMNS: tuple[str, ...] = (
    "symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
    "taker_buy_volume", "taker_buy_quote_volume",
)


def fold_symbols(state: FoldState) -> list[str]:
    """Every symbol a fold state speaks for (its saved rows replace exactly these)."""
    return sorted({*state.max_trade_ids, *state.watermarks_ms, *(c.symbol for c in state.open_candles)})


def candle_row(c: Candle) -> tuple[Any, ...]:
    """A candle as a row in :data:`CANDLE_COLUMNS` order."""
    return (c.symbol, c.interval.value, c.open_ms, c.open, c.high, c.low, c.close, c.volume, c.quote_volume,
            c.trades, c.taker_buy_volume, c.taker_buy_quote_volume)


def row_candle(r: Sequence[Any], *, closed: bool = True) -> Candle:
    """The inverse of :func:`candle_row`."""
    return Candle(str(r[0]), Interval(str(r[1])), int(r[2]), float(r[3]), float(r[4]), float(r[5]), float(r[6]),
                  float(r[7]), float(r[8]), int(r[9]), float(r[10]), float(r[11]), closed)


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
        """Replace the saved fold state of the symbols in ``state`` (candles in progress, ids and
        watermarks); other symbols' state (another ``process`` instance's) stays as it is."""
        ...

    async def load_fold(self, symbols: Collection[str] | None = None) -> FoldState | None:
        """The last saved fold state (of ``symbols`` only, when given), or None."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class BulkCandleStore(CandleStore, Protocol):
    """A store that also takes closed candles as one Arrow table (backfills and generated history)."""

    async def upsert_arrow(self, table: pa.Table) -> int:
        """Insert or replace rows with :data:`CANDLE_COLUMNS`; returns the number of rows."""
        ...
