"""Real history on a first start with the network: a background Binance backfill with progress.

``coincast up`` on live Binance data runs :class:`HistoryBackfill` next to the stream: for each
streamed interval it fetches what the lake lacks of :data:`DAYS` (a thousand days of day candles,
400 of hour candles, a few of minute candles), longest interval first so the pages that need a
long history (Analytics, 1h/1d models) work soonest. Every page is written to the lake and the
serving store as it arrives (:func:`~coincast.sources.binance.backfill.backfill`), so a restart
resumes where the last run stopped. :meth:`HistoryBackfill.progress` feeds ``/health`` and the
dashboard; a failure (Binance out of reach, a ban) stops the backfill, never the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from coincast.domain import Clock, CoincastError, Interval
from coincast.lake.parquet import ParquetLake
from coincast.sources.binance.backfill import backfill
from coincast.sources.binance.rest import BinanceRest
from coincast.store.base import CandleStore

log = logging.getLogger(__name__)
DAY_MS = 86_400_000

#: Days of history per interval; intervals not listed get the next shorter one's.
DAYS: dict[Interval, int] = {
    Interval.M1: 3, Interval.M3: 7, Interval.M5: 30, Interval.M15: 60, Interval.M30: 90,
    Interval.H1: 400, Interval.H4: 400, Interval.D1: 1000,
}

Status = Literal["pending", "running", "done", "failed"]


@dataclass
class IntervalProgress:
    """Candles to fetch for one interval (known once the lake is checked) and fetched so far."""

    days: int
    total: int | None = None
    done: int = 0

    def set_total(self, n: int) -> None:
        self.total = n

    def add(self, n: int) -> None:
        self.done += n


@dataclass
class BackfillProgress:
    """What ``/health`` shows under ``history``."""

    status: Status = "pending"
    intervals: dict[str, IntervalProgress] = field(default_factory=dict)
    error: str = ""

    @property
    def percent(self) -> float | None:
        """Share of the candles to fetch that are fetched, over the intervals counted so far."""
        counted = [p for p in self.intervals.values() if p.total is not None]
        total = sum(p.total or 0 for p in counted)
        if self.status == "done":
            return 100.0
        return None if not counted else round(100.0 * sum(p.done for p in counted) / max(total, 1), 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "percent": self.percent,
            "error": self.error,
            "intervals": {k: {"days": p.days, "total": p.total, "done": p.done} for k, p in self.intervals.items()},
        }


class HistoryBackfill:
    """Fetches missing history for ``symbols`` at ``intervals`` (see the module docstring).

    Args:
        rest: a Binance REST client (closed by the caller).
        lake: where history is kept; store: the serving store, written alongside.
        clock: wall time (the backfill ends at the current candle of each interval).
        days: days of history per interval (default :data:`DAYS`).
    """

    def __init__(
        self, rest: BinanceRest, lake: ParquetLake, store: CandleStore, symbols: Sequence[str],
        intervals: Sequence[Interval], clock: Clock, days: dict[Interval, int] | None = None,
    ) -> None:
        self.rest, self.lake, self.store, self.symbols, self.clock = rest, lake, store, tuple(symbols), clock
        plan = days or DAYS
        self.intervals = sorted((iv for iv in intervals if iv.ms >= Interval.M1.ms), key=lambda iv: -iv.ms)
        self.days = {iv: max((d for known, d in plan.items() if known.ms <= iv.ms), default=1) for iv in self.intervals}
        self.progress = BackfillProgress(intervals={iv.value: IntervalProgress(self.days[iv]) for iv in self.intervals})

    async def run(self) -> BackfillProgress:
        """Backfill every interval, longest first; never raises a :class:`CoincastError`."""
        self.progress.status = "running"
        try:
            for iv in self.intervals:
                p = self.progress.intervals[iv.value]
                end = iv.floor(self.clock.now_ms())
                report = await backfill(
                    self.rest, self.lake, self.symbols, iv, end - self.days[iv] * DAY_MS, end, store=self.store,
                    on_total=p.set_total, on_progress=p.add,
                )
                log.info("history backfilled", extra={"interval": iv.value, "candles": report.total})
        except CoincastError as exc:
            self.progress.status, self.progress.error = "failed", f"Binance history download stopped: {exc}"
            log.warning("history backfill stopped: %s", exc)
            return self.progress
        self.progress.status = "done"
        return self.progress
