"""Resumable kline backfill: fetch from Binance REST only what the lake does not have yet.

For each symbol the expected open times in ``[start, end)`` are compared with the lake's; the
missing ones are merged into spans and fetched page by page (1000 klines per request), each page
written to the lake (and the serving store) as soon as it arrives, so an interrupted run resumes
where it stopped. Hours Binance itself has no klines for (maintenance) stay missing and cost one
request per run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from coincast.domain import Candle, Interval, InvalidTimeRange
from coincast.lake.parquet import ParquetLake, candles_frame
from coincast.sources.binance.rest import BinanceRest
from coincast.store.base import CandleStore


@dataclass
class BackfillReport:
    """What a run did: candles fetched and written per symbol, spans requested."""

    fetched: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)
    spans: int = 0

    @property
    def total(self) -> int:
        return sum(self.fetched.values())


def missing_spans(have: set[int], start_ms: int, end_ms: int, step_ms: int) -> list[tuple[int, int]]:
    """Maximal ``[lo, hi)`` spans of open times on the ``step_ms`` grid not in ``have``."""
    spans: list[tuple[int, int]] = []
    lo: int | None = None
    for t in range(start_ms, end_ms, step_ms):
        if t in have:
            if lo is not None:
                spans.append((lo, t))
                lo = None
        elif lo is None:
            lo = t
    if lo is not None:
        spans.append((lo, end_ms))
    return spans


async def backfill(
    rest: BinanceRest,
    lake: ParquetLake,
    symbols: Sequence[str],
    interval: Interval,
    start_ms: int,
    end_ms: int,
    *,
    store: CandleStore | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Fill the lake (and ``store``) with closed klines of ``symbols`` in ``[start_ms, end_ms)``.

    Times are aligned to the interval grid. ``on_total`` receives the number of missing candles
    before fetching; ``on_progress`` the number covered after each page (for a progress bar).

    Raises:
        InvalidTimeRange: ``start_ms >= end_ms``.
        IpBanned / TransientError / InvalidRequest: from the REST client (pages written so far stay).
    """
    start_ms = interval.floor(start_ms)
    end_ms = interval.floor(end_ms - 1) + interval.ms if end_ms > start_ms else end_ms
    if start_ms >= end_ms:
        raise InvalidTimeRange(f"backfill range is empty: start {start_ms} >= end {end_ms}")
    report = BackfillReport()
    plans: list[tuple[str, list[tuple[int, int]]]] = []
    for symbol in symbols:
        have = lake.open_times(symbol, interval, start_ms, end_ms)
        spans = missing_spans(have, start_ms, end_ms, interval.ms)
        plans.append((symbol, spans))
        report.already[symbol] = len(have)
    if on_total is not None:
        on_total(sum((hi - lo) // interval.ms for _, spans in plans for lo, hi in spans))
    for symbol, spans in plans:
        report.fetched[symbol] = 0
        for lo, hi in spans:
            report.spans += 1
            covered = lo
            async for page in rest.klines(symbol, interval, lo, hi):
                await _write(lake, store, page, interval)
                report.fetched[symbol] += len(page)
                reached = min(hi, page[-1].open_ms + interval.ms)
                if on_progress is not None:
                    on_progress((reached - covered) // interval.ms)
                covered = reached
            if on_progress is not None and covered < hi:
                on_progress((hi - covered) // interval.ms)  # the exchange has nothing there
    return report


async def _write(lake: ParquetLake, store: CandleStore | None, page: list[Candle], interval: Interval) -> None:
    lake.write(candles_frame(page), interval)
    if store is not None:
        await store.upsert(page)
