"""Trades -> OHLCV candles at several intervals: a fold over trade batches on trade time.

The aggregator is pure: it takes :class:`TradeBatch` values and a watermark and returns candle
updates. Per batch the work is a handful of numpy reductions per interval (``reduceat`` over the
time buckets), never a Python object per trade; that is what keeps the streaming path within a
small factor of a vectorised batch aggregation (see ``benchmarks/bench_candles.py``).

Rules (the same for every interval, so 1h candles always equal the sum of their 1m candles):

* A trade is accepted while its candle of the *smallest* interval is still open. A candle opening
  at ``o`` closes once the watermark reaches ``o + interval + grace``. Later trades are *late*:
  counted and returned to the caller, never merged into a closed candle.
* Duplicate trade ids (same symbol) are dropped and counted. Ids of trades in still-open candles
  are remembered; trades in closed candles are rejected as late anyway.
* An interval with no trades closes as a zero-volume candle at the previous close, as Binance does.
* Open/close are the first/last trade by (event time, trade id), so out-of-order arrival within
  the grace period still gives the exchange's candle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from coincast.domain import Candle, FoldState, Interval, TradeBatch
from coincast.domain.market import F64, I64


@dataclass(frozen=True, slots=True)
class CandleUpdate:
    """A candle as it stands now: in progress (``candle.closed`` False) or final."""

    candle: Candle


@dataclass(slots=True)
class AggregatorStats:
    trades: int = 0
    late_trades: int = 0
    duplicate_trades: int = 0
    candles_closed: int = 0
    empty_candles: int = 0


@dataclass(slots=True)
class _Acc:
    """Mutable accumulator of one open candle; first/last keep (event_ms, trade_id) for open/close."""

    open_ms: int
    first_key: tuple[int, int]
    last_key: tuple[int, int]
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote_volume: float


@dataclass(slots=True)
class _Series:
    """Per (symbol, interval) state: the open accumulators and the next candle to close."""

    interval: Interval
    open: dict[int, _Acc] = field(default_factory=dict)
    next_open_ms: int | None = None
    last_close: float | None = None


@dataclass(slots=True)
class _SymbolState:
    series: list[_Series]
    watermark_ms: int = 0
    max_trade_id: int = -1
    restored_max_id: int = -1  # ids up to this were folded before a restart: repeats are duplicates
    # ids of accepted trades as (latest smallest-interval bucket in the chunk, ids), kept while
    # that bucket is open: the out-of-order dedup path checks against them
    id_chunks: list[tuple[int, I64]] = field(default_factory=list)


@dataclass(slots=True)
class AddResult:
    updates: list[CandleUpdate]
    late: TradeBatch | None


class CandleAggregator:
    """Folds trade batches into candles for every configured interval.

    Args:
        intervals: intervals to build; each must be a whole multiple of the smallest one.
        grace_ms: how long after an interval ends late trades are still merged.
    """

    def __init__(self, intervals: Sequence[Interval], grace_ms: int = 2_000) -> None:
        if not intervals:
            raise ValueError("at least one interval is needed")
        ordered = sorted(set(intervals), key=lambda i: i.ms)
        base = ordered[0]
        bad = [i.value for i in ordered if i.ms % base.ms]
        if bad:
            raise ValueError(f"intervals {bad} are not multiples of the smallest interval {base.value}")
        if grace_ms < 0:
            raise ValueError("grace_ms must be >= 0")
        self.intervals = tuple(ordered)
        self.base = base
        self.grace_ms = grace_ms
        self.stats = AggregatorStats()
        self._symbols: dict[str, _SymbolState] = {}
        self._watermark_ms = 0

    # -- public ---------------------------------------------------------------------------------

    def add(self, batch: TradeBatch) -> AddResult:
        """Merge a batch; returns in-progress updates for every touched candle and the late trades."""
        n = len(batch)
        if n == 0:
            return AddResult([], None)
        state = self._state(batch.symbol)
        base_series = state.series[0]

        keep, late_mask = self._accept(state, base_series, batch)
        late = batch.take(late_mask) if late_mask is not None and late_mask.any() else None
        if late is not None:
            self.stats.late_trades += len(late)
        if keep is not None:
            batch = batch.take(keep)
        if len(batch) == 0:
            return AddResult([], late)
        self.stats.trades += len(batch)

        # sort once by (event time, trade id); the common case is already sorted
        t, ids = batch.event_ms, batch.trade_id
        if not (np.all(t[1:] >= t[:-1]) and _ids_increase_within_equal_times(t, ids)):
            order = np.lexsort((ids, t))
            batch = batch.take(order)
            t, ids = batch.event_ms, batch.trade_id
        self._remember_ids(state, batch)

        updates: list[CandleUpdate] = []
        quote = batch.price * batch.qty
        taker = ~batch.is_buyer_maker
        taker_qty = np.where(taker, batch.qty, 0.0)
        taker_quote = np.where(taker, quote, 0.0)
        for series in state.series:
            updates.extend(self._merge(batch.symbol, series, t, ids, batch.price, batch.qty, quote,
                                       taker_qty, taker_quote))
        return AddResult(updates, late)

    def advance(self, watermark_ms: int, symbol: str | None = None) -> list[CandleUpdate]:
        """Close every candle whose interval plus grace has elapsed by ``watermark_ms``.

        With ``symbol`` only that symbol's candles (a watermark carried by its own batches),
        otherwise every symbol's. Quiet intervals close as zero-volume candles at the previous
        close. Returns the closed candles in time order per (symbol, interval).
        """
        if symbol is None:
            if watermark_ms <= self._watermark_ms:
                return []
            self._watermark_ms = watermark_ms
            states = list(self._symbols.items())
        else:
            states = [(symbol, self._state(symbol))]
        closed: list[CandleUpdate] = []
        for sym, state in states:
            if watermark_ms <= state.watermark_ms:
                continue
            state.watermark_ms = watermark_ms
            for series in state.series:
                closed.extend(self._close_due(sym, series, watermark_ms))
            base_next = state.series[0].next_open_ms
            if base_next is not None and state.id_chunks and state.id_chunks[0][0] < base_next:
                state.id_chunks = [c for c in state.id_chunks if c[0] >= base_next]
        return closed

    def _state(self, symbol: str) -> _SymbolState:
        state = self._symbols.get(symbol)
        if state is None:
            state = _SymbolState([_Series(i) for i in self.intervals], watermark_ms=self._watermark_ms)
            self._symbols[symbol] = state
        return state

    def flush(self) -> list[CandleUpdate]:
        """Close every open candle now (end of a finite replay): the last ones may be partial."""
        closed: list[CandleUpdate] = []
        for symbol, state in self._symbols.items():
            for series in state.series:
                if series.open:
                    last_open = max(series.open)
                    closed.extend(self._close_due(symbol, series, last_open + series.interval.ms
                                                  + self.grace_ms))
        return closed

    @property
    def symbols(self) -> set[str]:
        """Symbols the fold holds state for."""
        return set(self._symbols)

    def drop(self, symbols: set[str]) -> None:
        """Forget these symbols (their partitions moved to another ``process`` instance, which
        continues from the state stored for them)."""
        for sym in symbols:
            self._symbols.pop(sym, None)

    def snapshot(self) -> list[Candle]:
        """The candles currently in progress (for a dashboard that connects mid-interval)."""
        out: list[Candle] = []
        for symbol, state in self._symbols.items():
            for series in state.series:
                out.extend(self._to_candle(symbol, series.interval, a, closed=False)
                           for a in sorted(series.open.values(), key=lambda a: a.open_ms))
        return out

    @property
    def watermark_ms(self) -> int:
        return self._watermark_ms

    def fold_state(self) -> FoldState:
        """What a restarted aggregator needs (see :meth:`restore`)."""
        return FoldState(
            tuple(self.snapshot()),
            {sym: st.max_trade_id for sym, st in self._symbols.items() if st.max_trade_id >= 0},
            {sym: st.watermark_ms for sym, st in self._symbols.items()},
        )

    def restore(self, state: FoldState, last_closed: Sequence[Candle]) -> None:
        """Continue after a restart: candles in progress, the last closed candle of each series
        (so quiet intervals still fill and earlier trades count as late), folded trade ids
        (a redelivered trade is a duplicate) and watermarks.

        Open candles keep their open; trades arriving now extend them and set their close.
        """
        last = {(c.symbol, c.interval): c for c in last_closed}
        for sym in {*state.max_trade_ids, *state.watermarks_ms, *(c.symbol for c in state.open_candles), *(
                c.symbol for c in last_closed)}:
            st = self._state(sym)
            st.max_trade_id = st.restored_max_id = state.max_trade_ids.get(sym, -1)
            st.watermark_ms = max(st.watermark_ms, state.watermarks_ms.get(sym, 0))
            for series in st.series:
                prev = last.get((sym, series.interval))
                if prev is not None:
                    series.next_open_ms, series.last_close = prev.open_ms + series.interval.ms, prev.close
        wm = state.watermarks_ms
        for c in state.open_candles:
            if c.interval not in self.intervals:
                continue
            series = self._state(c.symbol).series[self.intervals.index(c.interval)]
            if series.next_open_ms is not None and c.open_ms < series.next_open_ms:
                continue  # closed and stored since the snapshot was taken
            last_t = max(c.open_ms, min(wm.get(c.symbol, c.open_ms), c.open_ms + c.interval.ms) - 1)
            series.open[c.open_ms] = _Acc(
                c.open_ms, (c.open_ms - 1, -1), (last_t, -1), c.open, c.high, c.low, c.close, c.volume,
                c.quote_volume, c.trades, c.taker_buy_volume, c.taker_buy_quote_volume)
            if series.next_open_ms is None or c.open_ms < series.next_open_ms:
                series.next_open_ms = c.open_ms

    # -- internals ------------------------------------------------------------------------------

    def _accept(
        self, state: _SymbolState, base: _Series, batch: TradeBatch
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Masks of trades to keep and of late ones; None means 'all' / 'none'."""
        ids = batch.trade_id
        late_mask: np.ndarray | None = None
        # late: the smallest-interval candle is closed, or would be by the watermark already seen
        bucket = batch.event_ms - batch.event_ms % self.base.ms
        lm = bucket + (self.base.ms + self.grace_ms) <= state.watermark_ms
        if base.last_close is not None and base.next_open_ms is not None:
            lm |= bucket < base.next_open_ms
        if lm.any():
            late_mask = lm
        # fast path: ids strictly above everything seen and strictly increasing -> no duplicates
        if ids[0] > state.max_trade_id and (len(ids) == 1 or bool(np.all(ids[1:] > ids[:-1]))):
            dup = None
        else:
            dup = _duplicates(ids, state.id_chunks)
            if state.restored_max_id >= 0:
                dup |= ids <= state.restored_max_id
            if not dup.any():
                dup = None
        if dup is not None:
            self.stats.duplicate_trades += int(dup.sum()) - (
                int((dup & late_mask).sum()) if late_mask is not None else 0)
        if late_mask is None and dup is None:
            return None, None
        keep = np.ones(len(ids), dtype=np.bool_)
        if late_mask is not None:
            keep &= ~late_mask
        if dup is not None:
            keep &= ~dup
            if late_mask is not None:
                late_mask = late_mask & ~dup
        return keep, late_mask

    def _remember_ids(self, state: _SymbolState, batch: TradeBatch) -> None:
        ids = batch.trade_id
        state.max_trade_id = max(state.max_trade_id, int(ids.max()))
        last = int(batch.event_ms[-1])  # batch is sorted by time here
        state.id_chunks.append((last - last % self.base.ms, ids))

    def _merge(
        self, symbol: str, series: _Series, t: I64, ids: I64, price: F64, qty: F64, quote: F64,
        taker_qty: F64, taker_quote: F64,
    ) -> list[CandleUpdate]:
        ms = series.interval.ms
        bucket = t - t % ms
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(t)] - 1
        highs = np.maximum.reduceat(price, starts)
        lows = np.minimum.reduceat(price, starts)
        vols = np.add.reduceat(qty, starts)
        quotes = np.add.reduceat(quote, starts)
        tq = np.add.reduceat(taker_qty, starts)
        tqq = np.add.reduceat(taker_quote, starts)
        counts = ends - starts + 1
        touched: dict[int, _Acc] = {}
        for k in range(len(starts)):
            s, e = int(starts[k]), int(ends[k])
            open_ms = int(bucket[s])
            first_key, last_key = (int(t[s]), int(ids[s])), (int(t[e]), int(ids[e]))
            acc = series.open.get(open_ms)
            if acc is None:
                acc = _Acc(open_ms, first_key, last_key, float(price[s]), float(highs[k]), float(lows[k]),
                           float(price[e]), float(vols[k]), float(quotes[k]), int(counts[k]),
                           float(tq[k]), float(tqq[k]))
                series.open[open_ms] = acc
                if series.next_open_ms is None or open_ms < series.next_open_ms:
                    series.next_open_ms = open_ms
            else:
                if first_key < acc.first_key:
                    acc.first_key, acc.open = first_key, float(price[s])
                if last_key > acc.last_key:
                    acc.last_key, acc.close = last_key, float(price[e])
                acc.high = max(acc.high, float(highs[k]))
                acc.low = min(acc.low, float(lows[k]))
                acc.volume += float(vols[k])
                acc.quote_volume += float(quotes[k])
                acc.trades += int(counts[k])
                acc.taker_buy_volume += float(tq[k])
                acc.taker_buy_quote_volume += float(tqq[k])
            touched[open_ms] = acc
        return [CandleUpdate(self._to_candle(symbol, series.interval, a, closed=False))
                for a in touched.values()]

    def _close_due(self, symbol: str, series: _Series, watermark_ms: int) -> list[CandleUpdate]:
        if series.next_open_ms is None:
            return []
        ms = series.interval.ms
        out: list[CandleUpdate] = []
        while series.next_open_ms + ms + self.grace_ms <= watermark_ms:
            o = series.next_open_ms
            acc = series.open.pop(o, None)
            if acc is not None:
                candle = self._to_candle(symbol, series.interval, acc, closed=True)
            else:
                prev = series.last_close
                if prev is None:  # nothing traded yet in this series: nothing to carry forward
                    break
                candle = Candle(symbol, series.interval, o, prev, prev, prev, prev, 0.0, 0.0, 0, 0.0, 0.0)
                self.stats.empty_candles += 1
            series.last_close = candle.close
            series.next_open_ms = o + ms
            self.stats.candles_closed += 1
            out.append(CandleUpdate(candle))
        return out

    @staticmethod
    def _to_candle(symbol: str, interval: Interval, a: _Acc, *, closed: bool) -> Candle:
        return Candle(symbol, interval, a.open_ms, a.open, a.high, a.low, a.close, a.volume, a.quote_volume,
                      a.trades, a.taker_buy_volume, a.taker_buy_quote_volume, closed)


def _ids_increase_within_equal_times(t: I64, ids: I64) -> bool:
    """True when trades with equal event times are already in trade-id order."""
    same = t[1:] == t[:-1]
    return not same.any() or bool(np.all(ids[1:][same] > ids[:-1][same]))


def _duplicates(ids: I64, seen: list[tuple[int, I64]]) -> np.ndarray:
    """Mask of ids already seen in open candles or repeated earlier in this batch."""
    dup = np.zeros(len(ids), dtype=np.bool_)
    if seen:
        dup |= np.isin(ids, np.concatenate([c[1] for c in seen]))
    _, first = np.unique(ids, return_index=True)
    repeated = np.ones(len(ids), dtype=np.bool_)
    repeated[first] = False
    return dup | repeated
