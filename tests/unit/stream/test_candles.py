"""The candle fold: boundaries, late and duplicate trades, quiet intervals, interval consistency."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from tests.factories import T0, make_batch, make_trade

from coincast.domain import Interval, TradeBatch
from coincast.stream.candles import CandleAggregator

M1 = Interval.M1.ms


def closed(agg: CandleAggregator, watermark: int, interval: Interval = Interval.M1):
    return [u.candle for u in agg.advance(watermark) if u.candle.interval == interval]


def test_trade_on_boundary_belongs_to_the_next_candle() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=0)
    agg.add(make_batch(make_trade(1, T0 + M1 - 1, 10.0), make_trade(2, T0 + M1, 20.0)))
    got = closed(agg, T0 + 2 * M1)
    assert [(c.open_ms, c.open, c.close, c.trades) for c in got] == [(T0, 10.0, 10.0, 1), (T0 + M1, 20.0, 20.0, 1)]
    assert got[0].close_ms == T0 + M1 - 1


def test_ohlcv_and_taker_volume() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=0)
    agg.add(make_batch(
        make_trade(1, T0 + 1, 10.0, 1.0, buyer_maker=False),
        make_trade(2, T0 + 2, 12.0, 2.0, buyer_maker=True),
        make_trade(3, T0 + 3, 9.0, 1.0, buyer_maker=False),
        make_trade(4, T0 + 4, 11.0, 0.5, buyer_maker=False),
    ))
    (c,) = closed(agg, T0 + M1)
    assert (c.open, c.high, c.low, c.close) == (10.0, 12.0, 9.0, 11.0)
    assert c.volume == pytest.approx(4.5)
    assert c.quote_volume == pytest.approx(10 + 24 + 9 + 5.5)
    assert c.trades == 4
    assert c.taker_buy_volume == pytest.approx(2.5)
    assert c.taker_buy_quote_volume == pytest.approx(10 + 9 + 5.5)
    assert c.closed


def test_late_trade_within_grace_is_merged_and_sets_the_open() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=2_000)
    agg.add(make_batch(make_trade(2, T0 + 30_000, 11.0), make_trade(3, T0 + M1 + 500, 50.0)))
    assert agg.advance(T0 + M1 + 1_000) == []  # inside grace: nothing closes yet
    res = agg.add(make_batch(make_trade(1, T0 + 10_000, 9.0)))  # arrives late, belongs before id 2
    assert res.late is None
    (c,) = closed(agg, T0 + M1 + 2_000)
    assert (c.open, c.low, c.close, c.trades) == (9.0, 9.0, 11.0, 2)


def test_trade_after_grace_is_rejected_as_late_and_returned() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=1_000)
    agg.add(make_batch(make_trade(1, T0 + 5, 10.0)))
    (c,) = closed(agg, T0 + M1 + 1_000)
    res = agg.add(make_batch(make_trade(2, T0 + 50_000, 99.0), make_trade(3, T0 + M1 + 10, 11.0)))
    assert res.late is not None and res.late.trade_id.tolist() == [2]
    assert agg.stats.late_trades == 1
    assert c.close == 10.0
    (c2,) = closed(agg, T0 + 2 * M1 + 1_000)
    assert (c2.open, c2.trades) == (11.0, 1)


def test_duplicate_trade_ids_are_counted_once() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=0)
    t1 = make_trade(1, T0 + 1, 10.0, 1.0)
    t2 = make_trade(2, T0 + 2, 11.0, 1.0)
    agg.add(make_batch(t1, t2))
    agg.add(make_batch(t2, t1, make_trade(3, T0 + 3, 12.0, 1.0)))  # replayed ids
    agg.add(make_batch(make_trade(4, T0 + 4, 13.0), make_trade(4, T0 + 4, 13.0)))  # repeated in one batch
    (c,) = closed(agg, T0 + M1)
    assert c.trades == 4 and c.volume == 4.0 and c.close == 13.0
    assert agg.stats.duplicate_trades == 3


def test_quiet_interval_closes_as_zero_volume_candle_at_previous_close() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=500)
    agg.add(make_batch(make_trade(1, T0 + 10, 10.0), make_trade(2, T0 + 20, 12.5)))
    got = closed(agg, T0 + 3 * M1 + 500)
    assert [c.open_ms for c in got] == [T0, T0 + M1, T0 + 2 * M1]
    empty = got[1]
    assert (empty.open, empty.high, empty.low, empty.close) == (12.5, 12.5, 12.5, 12.5)
    assert (empty.volume, empty.trades) == (0.0, 0)


def test_candle_closes_without_a_further_trade() -> None:
    agg = CandleAggregator([Interval.M1, Interval.M5], grace_ms=1_000)
    agg.add(make_batch(make_trade(1, T0 + 10, 10.0)))
    assert closed(agg, T0 + M1 + 999) == []
    assert len(closed(agg, T0 + M1 + 1_000)) == 1


def test_higher_intervals_equal_the_aggregate_of_1m() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    t = np.sort(rng.integers(T0, T0 + 2 * 86_400_000, n)).astype(np.int64)
    batch = TradeBatch("ETHUSDT", np.arange(n, dtype=np.int64), t, 100 + rng.standard_normal(n).cumsum(),
                       rng.random(n), rng.random(n) < 0.5)
    agg = CandleAggregator([Interval.M1, Interval.M5, Interval.H1, Interval.D1], grace_ms=0)
    for chunk in np.array_split(np.arange(n), 37):
        agg.add(batch.take(chunk))
    out = [u.candle for u in agg.advance(T0 + 2 * 86_400_000)]
    by = {i: [c for c in out if c.interval == i] for i in agg.intervals}
    assert len(by[Interval.D1]) == 2 and len(by[Interval.H1]) == 48 and len(by[Interval.M1]) == 2880
    m1 = pl.DataFrame([c.as_dict() for c in by[Interval.M1]])
    for iv in (Interval.M5, Interval.H1, Interval.D1):
        ref = (m1.with_columns(b=pl.col("open_time") - pl.col("open_time") % iv.ms).group_by("b").agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
            pl.col("volume").sum(), pl.col("trades").sum()).sort("b"))
        got = pl.DataFrame([c.as_dict() for c in by[iv]])
        assert got["open_time"].to_list() == ref["b"].to_list()
        for col in ("open", "high", "low", "close", "trades"):
            assert got[col].to_list() == ref[col].to_list(), (iv, col)
        assert np.allclose(got["volume"].to_numpy(), ref["volume"].to_numpy(), rtol=1e-12)


def test_out_of_order_batches_give_the_same_candles_as_sorted() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    t = np.sort(rng.integers(T0, T0 + 10 * M1, n)).astype(np.int64)
    px, qty, maker = rng.random(n) + 50, rng.random(n), rng.random(n) < 0.3
    batch = TradeBatch("BTCUSDT", np.arange(n, dtype=np.int64), t, px, qty, maker)
    ref = CandleAggregator([Interval.M1], grace_ms=M1 * 20)
    ref.add(batch)
    shuffled = CandleAggregator([Interval.M1], grace_ms=M1 * 20)
    perm = rng.permutation(n)
    for chunk in np.array_split(perm, 13):
        shuffled.add(batch.take(chunk))
    want = [u.candle.as_dict() for u in ref.advance(T0 + 40 * M1)]
    got = [u.candle.as_dict() for u in shuffled.advance(T0 + 40 * M1)]
    assert len(want) == len(got) == 20  # 10 traded minutes + 10 quiet ones, grace 20 min
    for w, g in zip(want, got, strict=True):
        assert (g.pop("symbol"), g.pop("interval")) == (w.pop("symbol"), w.pop("interval"))
        assert g == pytest.approx(w, rel=1e-12)  # sums differ only by float summation order


def test_intervals_must_nest() -> None:
    with pytest.raises(ValueError, match="not multiples"):
        CandleAggregator([Interval.M3, Interval.M5])


def test_watermark_per_symbol_closes_only_that_symbol() -> None:
    agg = CandleAggregator([Interval.M1], grace_ms=0)
    agg.add(make_batch(make_trade(1, T0 + 5, 10.0, symbol="BTCUSDT")))
    agg.add(make_batch(make_trade(1, T0 + 5, 20.0, symbol="ETHUSDT")))
    got = agg.advance(T0 + M1, "ETHUSDT")
    assert [(u.candle.symbol, u.candle.open_ms) for u in got] == [("ETHUSDT", T0)]
    # BTC is still open: a trade within its minute is merged, not late
    res = agg.add(make_batch(make_trade(2, T0 + 50_000, 11.0, symbol="BTCUSDT")))
    assert res.late is None
    # ETH's minute is closed: a trade in it is late
    res = agg.add(make_batch(make_trade(2, T0 + 50_000, 21.0, symbol="ETHUSDT")))
    assert res.late is not None and len(res.late) == 1
    (btc,) = [u.candle for u in agg.advance(T0 + M1)]
    assert (btc.symbol, btc.trades, btc.close) == ("BTCUSDT", 2, 11.0)


def test_heartbeat_batches_close_quiet_candles_in_the_processor() -> None:
    import asyncio

    from coincast.domain import TradeBatch
    from coincast.stream.processor import StreamProcessor

    class Sink:
        def __init__(self) -> None:
            self.closed: list[int] = []

        def on_candles(self, updates):  # type: ignore[no-untyped-def]
            self.closed += [u.candle.open_ms for u in updates if u.candle.closed]

    async def batches():  # type: ignore[no-untyped-def]
        yield [make_batch(make_trade(1, T0 + 5, 10.0))]
        yield [TradeBatch.heartbeat("BTCUSDT", T0 + 3 * M1)]

    sink = Sink()
    proc = StreamProcessor(CandleAggregator([Interval.M1], 0), batches(), None, [sink])
    asyncio.run(proc.run())
    assert sink.closed == [T0, T0 + M1, T0 + 2 * M1]


def test_restore_continues_candles_in_progress_exactly() -> None:
    rng = np.random.default_rng(11)
    n = 6_000
    t = np.sort(rng.integers(T0, T0 + 30 * M1, n)).astype(np.int64)
    batch = TradeBatch("BTCUSDT", np.arange(n, dtype=np.int64), t, 100 + rng.random(n), rng.random(n),
                       rng.random(n) < 0.4)
    ivs = [Interval.M1, Interval.M5, Interval.H1]
    ref = CandleAggregator(ivs, grace_ms=0)
    ref.add(batch)
    want = [u.candle for u in ref.advance(T0 + 2 * 3_600_000)]

    cut = int(np.searchsorted(t, T0 + 17 * M1 + 20_000))
    first = CandleAggregator(ivs, grace_ms=0)
    first.add(batch.take(np.arange(cut)))
    closed_before = [u.candle for u in first.advance(int(t[cut - 1]))]
    state = first.fold_state()
    assert {c.interval for c in state.open_candles} == set(ivs) and state.max_trade_ids == {"BTCUSDT": cut - 1}

    last = {}
    for c in closed_before:
        last[(c.symbol, c.interval)] = c
    second = CandleAggregator(ivs, grace_ms=0)
    second.restore(state, list(last.values()))
    res = second.add(batch.take(np.arange(cut - 50, n)))  # 50 trades redelivered: duplicates
    assert res.late is None and second.stats.duplicate_trades == 50
    after = [u.candle for u in second.advance(T0 + 2 * 3_600_000)]
    got = closed_before + after
    assert len(got) == len(want)
    for w, g in zip(sorted(want, key=lambda c: (c.interval.ms, c.open_ms)),
                    sorted(got, key=lambda c: (c.interval.ms, c.open_ms)), strict=True):
        assert (g.interval, g.open_ms, g.open, g.high, g.low, g.close, g.trades) == (
            w.interval, w.open_ms, w.open, w.high, w.low, w.close, w.trades)
        assert g.volume == pytest.approx(w.volume, rel=1e-12)
