"""Closed candles to the serving store: buffered, flushed on a short interval, flushed at stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import Counter

from coincast.domain import Candle, CoincastError, DeadLetter, FoldState
from coincast.store.base import CandleStore
from coincast.stream.candles import CandleUpdate

log = logging.getLogger(__name__)

WRITES = Counter("coincast_store_candles_written_total", "Closed candles written to the store")
DEAD_LETTERS = Counter("coincast_dead_letters_total", "Messages set aside", ["source", "reason"])
WRITE_ERRORS = Counter("coincast_store_write_errors_total", "Store writes that failed and will be retried")


class StoreWriter:
    """A :class:`~coincast.stream.processor.CandleSink` that persists closed candles.

    A candle closed more than ``flush_ms`` ago is on disk (the durability promise of
    ``coincast up``). A failed write keeps its candles buffered and is retried next round.

    With a durable bus subscription (``position`` and ``commit``), offsets follow durability: the
    position is taken at the same instant as the fold state and committed only after candles,
    fold state and dead letters are stored. A crash at any point replays from a position the
    stored state covers; the fold drops the trades it already has by id.
    """

    def __init__(self, store: CandleStore, flush_ms: int = 1_000,
                 dead_letters: DeadLetterWriter | None = None,
                 fold_state: Callable[[], FoldState] | None = None,
                 position: Callable[[], Any] | None = None,
                 commit: Callable[[Any], Awaitable[None]] | None = None) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._fold_state = fold_state
        self._position = position
        self._commit = commit
        self._flush_s = flush_ms / 1000
        self._pending: list[Candle] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.stored_position: Any = None  # the bus position the last successful flush covered
        self.written = 0
        self.failures = 0

    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        self._pending.extend(u.candle for u in updates if u.candle.closed)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="store-writer")

    async def flush(self, *, commit: bool = True) -> int:
        """Write the closed candles, then the fold state taken at the same instant (so a restart
        resumes exactly after what is stored), then dead letters; then commit the bus position
        taken at that instant (``commit`` False: only record it in ``stored_position``, for a
        caller that commits itself)."""
        async with self._lock:
            batch, self._pending = self._pending, []
            state = self._fold_state() if self._fold_state is not None else None
            position = self._position() if self._position is not None else None
            n = 0
            try:
                if batch:
                    n = await self._store.upsert(batch)
                if state is not None:
                    await self._store.save_fold(state)
                if self._dead_letters is not None:
                    await self._dead_letters.flush()
            except CoincastError:
                self._pending[:0] = batch
                self.failures += 1
                WRITE_ERRORS.inc()
                raise
            self.written += n
            WRITES.inc(n)
            self.stored_position = position
            if commit and position is not None and self._commit is not None:
                await self._commit(position)
            return n

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except CoincastError as exc:  # a database restart: retried, offsets stay uncommitted
                log.error("store write failed, will retry: %s", exc)

    async def stop(self) -> None:
        """Stop the loop and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class DeadLetterWriter:
    """A :class:`~coincast.sources.base.DeadLetterSink`: counts, buffers and persists set-aside messages.

    ``put`` never blocks or raises; the buffer is bounded (``max_buffer``) and what overflows is
    counted in ``dropped`` so a flood of garbage cannot exhaust memory.
    """

    def __init__(self, store: CandleStore, max_buffer: int = 10_000) -> None:
        self._store = store
        self._buf: list[DeadLetter] = []
        self._max = max_buffer
        self.count = 0
        self.dropped = 0

    def put(self, item: DeadLetter) -> None:
        self.count += 1
        DEAD_LETTERS.labels(item.source, item.reason.split(":", 1)[0][:40]).inc()
        if len(self._buf) >= self._max:
            self.dropped += 1
            return
        self._buf.append(item)

    async def flush(self) -> int:
        batch, self._buf = self._buf, []
        if not batch:
            return 0
        try:
            return await self._store.add_dead_letters(batch)
        except CoincastError:
            self._buf[:0] = batch[: self._max]
            raise
