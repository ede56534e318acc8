"""Simulated candle history: shape, continuity with the live simulator, and its statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from coincast.domain import ConfigError, DeadLetter, Interval, ManualClock
from coincast.domain.market import F64
from coincast.lake.parquet import open_lake
from coincast.settings import load_settings
from coincast.sources.sim_history import SimHistory, history_windows, simulate_history
from coincast.sources.simulator import PROFILES, MarketSimulator, SimParams
from coincast.store.duckdb import DuckDBStore
from coincast.wiring import open_source

END_MS = 1_767_225_600_000 + 17 * 3_600_000 + 34 * 60_000  # 2026-01-01 17:34 UTC
STREAMED = (Interval.M1, Interval.M5, Interval.H1, Interval.D1)
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def history() -> SimHistory:
    return simulate_history(SimParams(seed=3), END_MS, history_windows(STREAMED, 730))


def _closes(h: SimHistory, iv: Interval) -> F64:
    wide = h.frames[iv].pivot(on="symbol", index="open_time", values="close").sort("open_time")
    return wide.select(SimParams().symbols).to_numpy()


def test_windows_per_interval() -> None:
    w = history_windows((Interval.S1, Interval.M1, Interval.M3, Interval.M15, Interval.H4, Interval.D1), 400)
    assert w == {Interval.M1: 7 * DAY_MS, Interval.M3: 7 * DAY_MS, Interval.M15: 60 * DAY_MS,
                 Interval.H4: 400 * DAY_MS, Interval.D1: 400 * DAY_MS}
    assert history_windows(STREAMED, 0) == {}


def test_every_interval_has_its_window_without_gaps(history: SimHistory) -> None:
    for iv, days in ((Interval.M1, 7), (Interval.M5, 60), (Interval.H1, 730), (Interval.D1, 730)):
        frame = history.frames[iv]
        assert frame["symbol"].n_unique() == 10
        t = frame.filter(symbol="BTCUSDT")["open_time"].dt.epoch("ms").to_numpy()
        assert set(np.diff(t)) == {iv.ms}, iv
        assert t[-1] + iv.ms <= END_MS < t[-1] + 2 * iv.ms  # the last closed candle ends at or before END_MS
        assert abs(len(t) - days * DAY_MS // iv.ms) <= 1, iv


def test_history_ends_at_the_start_price_and_hands_open_candles_to_the_fold(history: SimHistory) -> None:
    assert history.last_close == {s: PROFILES[s].price for s in SimParams().symbols}
    opened = {(c.symbol, c.interval): c for c in history.open_candles}
    assert {iv for _, iv in opened} == {Interval.M5, Interval.H1, Interval.D1}  # END_MS is on a minute
    for sym, price in history.last_close.items():
        hour = opened[(sym, Interval.H1)]
        assert hour.open_ms == END_MS - 34 * 60_000 and not hour.closed
        assert hour.close == pytest.approx(price, abs=PROFILES[sym].tick)
        minutes = history.frames[Interval.M1].filter(
            (pl.col("symbol") == sym) & (pl.col("open_time").dt.epoch("ms") >= hour.open_ms))
        assert minutes.height == 34
        assert hour.open == minutes["open"][0] and hour.high == minutes["high"].max()
        assert hour.trades == minutes["trades"].sum()


def test_longer_candles_aggregate_the_shorter_ones(history: SimHistory) -> None:
    hours = history.frames[Interval.H1].filter(symbol="ETHUSDT").tail(48)
    fives = history.frames[Interval.M5].filter(symbol="ETHUSDT")
    for row in hours.iter_rows(named=True):
        part = fives.filter((pl.col("open_time") >= row["open_time"])
                            & (pl.col("open_time") < row["open_time"] + pl.duration(hours=1)))
        assert part.height == 12
        assert (row["open"], row["close"]) == (part["open"][0], part["close"][-1])
        assert (row["high"], row["low"]) == (part["high"].max(), part["low"].min())
        assert row["volume"] == pytest.approx(part["volume"].sum())
    f = history.frames[Interval.M1]
    assert f.select((pl.col("high") >= pl.max_horizontal("open", "close")).all()).item()
    assert f.select((pl.col("low") <= pl.min_horizontal("open", "close")).all()).item()
    assert f.select((pl.col("taker_buy_base") <= pl.col("volume")).all()).item()


def test_statistics_match_the_live_simulator(history: SimHistory) -> None:
    r = np.diff(np.log(_closes(history, Interval.H1)), axis=0)
    vols = r.std(axis=0) * np.sqrt(24 * 365.25)
    expected = np.array([SimParams().profile(s).vol for s in SimParams().symbols])
    np.testing.assert_allclose(vols, expected, rtol=0.15)
    btc = r[:, 0]
    kurt = ((btc - btc.mean()) ** 4).mean() / btc.var() ** 2 - 3
    assert kurt > 1.0  # fat tails
    a = np.abs(btc)
    assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.05  # volatility clusters
    assert abs(np.corrcoef(btc[1:], btc[:-1])[0, 1]) < 0.05  # returns do not
    corr = np.corrcoef(r.T)
    np.testing.assert_allclose(corr[0, 1:], SimParams().correlation()[0, 1:], atol=0.08)  # BTC-led
    assert corr[0, 1] == corr[0, 1:].max()  # BTC-ETH the tightest pair


def test_trade_counts_follow_the_configured_rates(history: SimHistory) -> None:
    days = history.frames[Interval.D1].group_by("symbol").agg(pl.col("trades").mean())
    per_s = dict(zip(days["symbol"], days["trades"] / 86_400, strict=True))
    for sym, rate in per_s.items():
        assert rate == pytest.approx(PROFILES[sym].rate, rel=0.1)


def test_same_seed_same_history_and_the_live_stream_draws_fresh_shocks(history: SimHistory) -> None:
    again = simulate_history(SimParams(seed=3), END_MS, {Interval.H1: 3 * DAY_MS})
    assert again.frames[Interval.H1].equals(
        simulate_history(SimParams(seed=3), END_MS, {Interval.H1: 3 * DAY_MS}).frames[Interval.H1])
    other = simulate_history(SimParams(seed=4), END_MS, {Interval.H1: 3 * DAY_MS})
    assert not other.frames[Interval.H1].equals(again.frames[Interval.H1])


def test_bad_end_or_interval_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="minute boundary"):
        simulate_history(SimParams(), END_MS + 1, {Interval.H1: DAY_MS})
    with pytest.raises(ConfigError, match="1s"):
        simulate_history(SimParams(), END_MS, {Interval.S1: DAY_MS})


async def test_first_start_seeds_store_lake_and_fold_and_the_live_stream_continues(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, symbols="BTCUSDT,ETHUSDT", source__kind="sim",
                             source__sim_history_days=30, source__sim_history_s=600)
    clock = ManualClock(END_MS + 600_000 + 12_345)
    store = DuckDBStore.open(str(tmp_path / "c.db"))
    try:
        source = await open_source(settings, _NoDeadLetters(), clock, store)
        assert isinstance(source, MarketSimulator)
        assert source.start_ms == END_MS  # ten minutes back, on the minute: where the history ends
        fold = await store.load_fold()
        assert fold is not None and fold.watermarks_ms == {"BTCUSDT": END_MS, "ETHUSDT": END_MS}
        last = await store.latest("BTCUSDT", Interval.H1)
        assert last is not None and last.open_ms == END_MS - 34 * 60_000 - Interval.H1.ms
        days = await store.history("ETHUSDT", Interval.D1, start_ms=0, end_ms=END_MS, limit=100)
        assert len(days) == 30
        lake = open_lake(settings.lake_url).read("BTCUSDT", Interval.M1)
        assert lake.height == 7 * 24 * 60
        first = await anext(b async for b in source.events() if b.symbol == "BTCUSDT")
        await source.close()
        assert first.event_ms.min() >= END_MS
        assert first.price[0] == pytest.approx(PROFILES["BTCUSDT"].price, rel=1e-3)  # no jump at the seam
        # a second start finds the data and does not generate again
        again = await open_source(settings, _NoDeadLetters(), clock, store)
        assert isinstance(again, MarketSimulator) and again.start_ms == END_MS
        assert len(await store.history("ETHUSDT", Interval.D1, start_ms=0, end_ms=END_MS, limit=100)) == 30
    finally:
        await store.close()


class _NoDeadLetters:
    def put(self, item: DeadLetter) -> None:
        raise AssertionError("the simulator sets nothing aside")


async def test_a_lake_with_real_history_is_never_mixed_with_simulated_candles(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, symbols="BTCUSDT,ETHUSDT", source__kind="sim",
                             source__sim_history_days=5, source__sim_history_s=0)
    lake = open_lake(settings.lake_url)
    real = pl.DataFrame({"symbol": ["BTCUSDT"], "open_time": [END_MS - DAY_MS], "open": [1.0], "high": [1.0],
                         "low": [1.0], "close": [1.0], "volume": [1.0]})
    lake.write(real, Interval.H1)
    store = DuckDBStore.open(str(tmp_path / "c.db"))
    try:
        await open_source(settings, _NoDeadLetters(), ManualClock(END_MS), store)
        assert await store.latest("BTCUSDT", Interval.H1) is None
        assert lake.read("BTCUSDT", Interval.H1).height == 1  # untouched
        assert len(await store.history("ETHUSDT", Interval.H1, start_ms=0, end_ms=END_MS, limit=1000)) > 100
    finally:
        await store.close()
