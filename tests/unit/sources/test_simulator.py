"""The market simulator: reproducible, realistic statistics, and a live source paced by the clock.

The statistical tests share one seeded 50-hour run (``run`` fixture, 20 s ticks, about 2M trades,
around a second). Their tolerances were chosen from many seeds, see each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pytest

from coincast.domain import DEFAULT_SYMBOLS, ConfigError, ManualClock, SystemClock, TradeBatch
from coincast.sources.simulator import (
    DEFAULT_PROFILE,
    PROFILES,
    MarketSimulator,
    SimParams,
    generate,
)

F64 = npt.NDArray[np.float64]
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z, a whole minute
MINUTE_MS = 60_000


def _concat(batches: list[TradeBatch]) -> dict[str, TradeBatch]:
    """Per symbol, all trades of ``batches`` in stream order."""
    by_symbol: dict[str, list[TradeBatch]] = {}
    for b in batches:
        by_symbol.setdefault(b.symbol, []).append(b)
    return {
        s: TradeBatch(
            s,
            np.concatenate([b.trade_id for b in bs]),
            np.concatenate([b.event_ms for b in bs]),
            np.concatenate([b.price for b in bs]),
            np.concatenate([b.qty for b in bs]),
            np.concatenate([b.is_buyer_maker for b in bs]),
        )
        for s, bs in by_symbol.items()
    }


@dataclass(frozen=True)
class Run:
    params: SimParams
    minutes: int
    log_close: F64  # (minutes, symbols): log of the last trade price of each minute
    trades: dict[str, int]
    min_price: dict[str, float]

    @property
    def returns(self) -> F64:
        return np.diff(self.log_close, axis=0)


def _simulate(params: SimParams, minutes: int, tick_ms: int = 20_000) -> Run:
    """Minute closes and counts, reduced batch by batch so millions of trades stay cheap."""
    last_ms: dict[str, list[int]] = {s: [] for s in params.symbols}
    last_px: dict[str, list[float]] = {s: [] for s in params.symbols}
    trades = dict.fromkeys(params.symbols, 0)
    low = dict.fromkeys(params.symbols, np.inf)
    for b in generate(params, START_MS, minutes * MINUTE_MS, tick_ms):
        last_ms[b.symbol].append(int(b.event_ms[-1]))
        last_px[b.symbol].append(float(b.price[-1]))
        trades[b.symbol] += len(b)
        low[b.symbol] = min(low[b.symbol], float(b.price.min()))
    closes = []
    for s in params.symbols:
        minute = (np.array(last_ms[s]) - START_MS) // MINUTE_MS
        last = np.searchsorted(minute, np.arange(minutes), side="right") - 1
        assert last[0] >= 0, f"{s} did not trade in the first minute"
        closes.append(np.log(np.array(last_px[s])[last]))
    return Run(params, minutes, np.array(closes).T, trades, low)


@pytest.fixture(scope="module")
def run() -> Run:
    # One trade a second per symbol keeps minute closes fresh (a stale close would bias the
    # correlation down: the Epps effect) while keeping the run to about 2M trades.
    profiles = {s: replace(PROFILES[s], rate=1.0) for s in DEFAULT_SYMBOLS}
    return _simulate(SimParams(seed=11, profiles=profiles), minutes=3_000)


def _excess_kurtosis(r: F64) -> F64:
    d = r - r.mean(axis=0)
    result: F64 = (d**4).mean(axis=0) / (d**2).mean(axis=0) ** 2 - 3.0
    return result


def _acf(x: F64, lag: int) -> float:
    d = x - x.mean()
    return float(d[:-lag] @ d[lag:] / (d @ d))


# --- reproducibility ---------------------------------------------------------------------------


def _stream(params: SimParams, minutes: int = 2) -> dict[str, TradeBatch]:
    return _concat(list(generate(params, START_MS, minutes * MINUTE_MS)))


def test_same_seed_gives_identical_arrays() -> None:
    a, b = _stream(SimParams(seed=5)), _stream(SimParams(seed=5))
    assert a.keys() == b.keys() == set(DEFAULT_SYMBOLS)
    for s in a:
        for field in ("trade_id", "event_ms", "price", "qty", "is_buyer_maker"):
            assert np.array_equal(getattr(a[s], field), getattr(b[s], field)), (s, field)


def test_different_seed_gives_a_different_stream() -> None:
    a, b = _stream(SimParams(seed=5)), _stream(SimParams(seed=6))
    for s in a:
        n = min(len(a[s]), len(b[s]))
        assert not np.array_equal(a[s].price[:n], b[s].price[:n]), s


def test_generate_yields_whole_ticks_only() -> None:
    assert list(generate(SimParams(), START_MS, 249)) == []
    batches = list(generate(SimParams(), START_MS, 1_000, tick_ms=250))
    assert max(int(b.event_ms.max()) for b in batches) < START_MS + 1_000


# --- prices, quantities, ids, times ------------------------------------------------------------


def test_trades_are_well_formed_per_tick() -> None:
    tick_ms, params = 250, SimParams(seed=3)
    batches = list(generate(params, START_MS, 10 * MINUTE_MS, tick_ms))
    last_tick: dict[str, int] = {}
    for b in batches:
        assert len(b) > 0
        tick = (b.event_ms - START_MS) // tick_ms
        assert np.all(tick == tick[0]), "a batch holds one tick"
        assert 0 <= tick[0] < 10 * MINUTE_MS // tick_ms
        assert tick[0] > last_tick.get(b.symbol, -1), "one batch per symbol and tick, in order"
        last_tick[b.symbol] = int(tick[0])
        assert np.all(np.diff(b.event_ms) >= 0)
    for s, t in _concat(batches).items():
        prof = params.profile(s)
        assert np.all(np.diff(t.trade_id) == 1), f"{s} ids must increase by one"
        assert t.trade_id[0] == START_MS * 1000, "ids start from the start time"
        assert np.all(t.price > 0) and np.all(t.qty > 0)
        assert np.allclose(t.price / prof.tick, np.round(t.price / prof.tick), rtol=0, atol=1e-6)
        assert np.allclose(t.qty / prof.lot, np.round(t.qty / prof.lot), rtol=0, atol=1e-6)
        assert abs(np.log(t.price[0] / prof.price)) < 0.01, f"{s} starts at its profile price"
        notional = np.median(t.price * t.qty)
        assert prof.notional / 2 < notional < prof.notional * 2, f"{s} median notional {notional}"


def test_prices_stay_positive_and_near_the_start_level(run: Run) -> None:
    years = run.minutes / (365.25 * 1440)
    for j, s in enumerate(run.params.symbols):
        prof = run.params.profile(s)
        assert run.min_price[s] > 0
        # Five standard deviations of the log price over the run: a seed-independent bound.
        drift = abs(run.log_close[-1, j] - np.log(prof.price))
        assert drift < 5 * prof.vol * np.sqrt(years), f"{s} drifted {drift:.3f} in log price"


def test_taker_side_leans_with_the_price_move() -> None:
    params = SimParams(seed=8, side_bias=0.2)
    up: list[float] = []
    down: list[float] = []
    for b in generate(params, START_MS, 30 * MINUTE_MS, tick_ms=1_000):
        if len(b) > 5 and b.price[-1] != b.price[0]:
            (up if b.price[-1] > b.price[0] else down).append(b.is_buyer_maker.mean())
    # The taker buys (is_buyer_maker False) more when the price rises.
    assert np.mean(up) < 0.45 < 0.55 < np.mean(down)


def test_unknown_symbol_gets_the_default_profile() -> None:
    t = _stream(SimParams(symbols=("FOOUSDT",)), minutes=1)["FOOUSDT"]
    assert abs(np.log(t.price.mean() / DEFAULT_PROFILE.price)) < 0.05


# --- statistics of 1-minute returns ------------------------------------------------------------


def test_returns_have_the_configured_volatility(run: Run) -> None:
    realised = run.returns.std(axis=0) * np.sqrt(365.25 * 1440)
    configured = np.array([run.params.profile(s).vol for s in run.params.symbols])
    # Over 50 h, persistent GARCH volatility makes the realised level wander (0.87-1.25 of the
    # setting over seeds 1-20), but every symbol shares the market multiplier, so the ratios to the
    # configured vols agree closely (spread at most 1.10 over those seeds).
    ratio = realised / configured
    assert np.all((ratio > 0.6) & (ratio < 1.5)), ratio
    assert ratio.max() / ratio.min() < 1.2, ratio


def test_one_minute_returns_are_fat_tailed(run: Run) -> None:
    kurt = _excess_kurtosis(run.returns)
    # A normal sample of 3000 has excess kurtosis 0 ± 0.09; the model gives about 3 * vol_of_vol
    # from GARCH mixing plus jumps. Over seeds 1-20: smallest symbol value 0.9, smallest median 1.7.
    assert np.all(kurt > 0.5), kurt
    assert np.median(kurt) > 1.0, kurt


def test_absolute_returns_cluster_while_returns_do_not(run: Run) -> None:
    r = run.returns
    abs_acf = np.array([[_acf(np.abs(r[:, j]), lag) for lag in range(1, 6)] for j in range(r.shape[1])])
    acf = np.array([[_acf(r[:, j], lag) for lag in range(1, 6)] for j in range(r.shape[1])])
    # One autocorrelation of 3000 iid points has standard error ~0.018 (more with fat tails). Per
    # lag, the mean over symbols of the |r| autocorrelation was 0.041-0.32 over seeds 1-20, while
    # that of r stayed within ±0.053 (fat tails widen its noise; the symbols move together).
    assert np.all(abs_acf.mean(axis=0) > 0.03), abs_acf.mean(axis=0)
    assert abs_acf.mean() > 0.04, abs_acf.mean()
    assert np.all(np.abs(acf.mean(axis=0)) < 0.07), acf.mean(axis=0)


def test_cross_asset_correlation_matches_the_setting(run: Run) -> None:
    expected = run.params.correlation()
    got = np.corrcoef(run.returns.T)
    pairs = np.triu_indices(len(run.params.symbols), 1)
    diff = (got - expected)[pairs]
    # The model's conditional correlation is exactly L_a * L_b; sampling noise over 3000 heavy-tailed
    # minutes is a few hundredths per pair, and the Epps effect (each close is the last trade, about
    # a second before the minute ends) lowers it by ~0.02. Over seeds 1-20 the worst pair was off by
    # 0.106 and the mean difference ranged from -0.061 to +0.020.
    assert np.abs(diff).max() < 0.12, diff
    assert -0.07 < diff.mean() < 0.04, diff.mean()


def test_configured_correlation_is_btc_led_and_realistic() -> None:
    params = SimParams()
    corr = params.correlation()
    assert np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1.0)
    assert np.all(np.linalg.eigvalsh(corr) > 0)
    off = corr[np.triu_indices(len(params.symbols), 1)]
    # Binance hourly returns 2023: pairs 0.50-0.89, mean 0.67, BTC-ETH the highest.
    assert off.min() > 0.4 and off.max() < 0.9 and 0.6 < off.mean() < 0.75
    btc, eth = params.symbols.index("BTCUSDT"), params.symbols.index("ETHUSDT")
    assert corr[btc, eth] == off.max()


def test_trade_arrival_rate_matches_the_configured_mean() -> None:
    # With a nearly constant volatility the count is Poisson: relative sd 1/sqrt(n) < 1% here.
    params = SimParams(seed=2, rate_scale=0.05, vol_of_vol=1e-4)
    result = _simulate(params, minutes=600, tick_ms=5_000)
    for s in params.symbols:
        expected = params.profile(s).rate * params.rate_scale * 600 * 60
        assert abs(result.trades[s] / expected - 1) < 4 / np.sqrt(expected), (s, result.trades[s], expected)


def test_default_rates_are_laptop_friendly_and_btc_is_busiest() -> None:
    params = SimParams()
    rates = {s: params.profile(s).rate for s in params.symbols}
    assert max(rates, key=rates.__getitem__) == "BTCUSDT"
    assert 100 < sum(rates.values()) < 400


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimParams(nu=4.0),
        lambda: SimParams(jump_share=1.0),
        lambda: SimParams(symbols=("BTCUSDT", "BTCUSDT")),
        lambda: SimParams(symbols=()),
        lambda: SimParams(rate_scale=0.0),
        lambda: SimParams(profiles={"BTCUSDT": replace(PROFILES["BTCUSDT"], loading=1.5)}),
    ],
)
def test_bad_params_are_config_errors(make: Callable[[], SimParams]) -> None:
    with pytest.raises(ConfigError, match="invalid simulator settings"):
        make()


@pytest.mark.parametrize("tick_ms", [0, -5, 6 * 3_600_000])
def test_bad_tick_is_a_config_error(tick_ms: int) -> None:
    with pytest.raises(ConfigError, match="tick_ms"):
        MarketSimulator(SimParams(), ManualClock(START_MS), tick_ms=tick_ms)


# --- the live source ---------------------------------------------------------------------------


async def _until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():
            await asyncio.sleep(0.005)


async def test_live_source_waits_for_the_clock_and_replays_generate() -> None:
    tick_ms, params = 50, SimParams(seed=9)
    clock = ManualClock(START_MS + 7)  # not on the tick grid: the grid starts at START_MS
    source = MarketSimulator(params, clock, tick_ms=tick_ms)
    assert source.name == "sim" and source.health.simulated and source.health.connected
    got: list[TradeBatch] = []

    async def consume() -> None:
        async for batch in source.events():
            got.append(batch)

    task = asyncio.create_task(consume())
    try:
        # The consumer is already waiting on the clock: two polls of one tick each, nothing due.
        await asyncio.sleep(2 * tick_ms / 1000)
        assert got == [] and source.watermark_ms() == START_MS
        clock.advance(40 * tick_ms)  # behind by 40 ticks: catch up at once, no drift
        await _until(lambda: source.watermark_ms() >= START_MS + 40 * tick_ms)
        assert source.watermark_ms() == START_MS + 40 * tick_ms
        assert source.health.messages == sum(len(b) for b in got) > 0
        assert source.health.last_message_ms == clock.now_ms()
        assert all(b.recv_ms == clock.now_ms() for b in got)
    finally:
        await source.close()
        await asyncio.wait_for(task, 5.0)
    assert not source.health.connected
    want = list(generate(params, START_MS, 40 * tick_ms, tick_ms))
    assert len(got) < len(want)  # the backlog came as merged batches, one per symbol
    for sym in params.symbols:  # ... holding exactly the trades generate() makes, in order
        a = [b for b in got if b.symbol == sym]
        w = [b for b in want if b.symbol == sym]
        for col in ("trade_id", "event_ms", "price", "qty", "is_buyer_maker"):
            assert np.array_equal(np.concatenate([getattr(b, col) for b in a]),
                                  np.concatenate([getattr(b, col) for b in w])), (sym, col)


async def test_watermark_moves_with_the_last_batch_of_a_tick() -> None:
    tick_ms, params = 250, SimParams(seed=4)
    clock = ManualClock(START_MS)
    source = MarketSimulator(params, clock, tick_ms=tick_ms)
    clock.advance(tick_ms)  # exactly the first tick is due: nothing below waits
    want = list(generate(params, START_MS, tick_ms, tick_ms))
    assert len(want) == len(params.symbols)  # every symbol trades in the first tick
    events = source.events()
    for i in range(len(want)):
        batch = await anext(events)
        assert batch.symbol == want[i].symbol
        # Other symbols' trades of the tick are still to come until the last batch is handed out.
        assert source.watermark_ms() == (START_MS + tick_ms if i == len(want) - 1 else START_MS)
    await events.aclose()
    await source.close()


async def test_live_source_is_paced_by_a_real_clock() -> None:
    clock, tick_ms = SystemClock(), 20
    source = MarketSimulator(SimParams(seed=1), clock, tick_ms=tick_ms)
    began = clock.now_ms()
    batches = 0
    async with asyncio.timeout(5.0):
        async for batch in source.events():
            batches += 1
            # Trades are never ahead of the clock, and only behind it by scheduling delays (loose
            # bound: this 2-core machine is shared).
            assert int(batch.event_ms.max()) < batch.recv_ms <= clock.now_ms()
            assert source.watermark_ms() <= batch.recv_ms
            assert batch.recv_ms - int(batch.event_ms.min()) < 1_000
            if clock.now_ms() - began >= 300:
                break
    await source.close()
    elapsed = clock.now_ms() - source.start_ms
    assert batches > 0
    # The watermark follows the clock: no more ticks than time allows, and not far behind it.
    assert elapsed - 1_000 <= source.watermark_ms() - source.start_ms <= elapsed
