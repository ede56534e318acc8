"""Simulated candle history for a first start without network, continuous with the live simulator.

The live simulator (:mod:`coincast.sources.simulator`) makes trades; months of trades would take
minutes to fold. The deep past is therefore drawn at candle level with the same model and the
same random dynamics (:meth:`_Engine.returns`: Student-t shocks, one market-wide GARCH variance
multiplier, jumps, the BTC-led factor loadings), all symbols and steps at once with numpy:

* 5-minute steps for the long windows (hour and day candles, a year or more),
* 1-minute steps for the last days (minute candles), continuing the same volatility state.

Inside a step the path is a Brownian bridge, so high and low are drawn from the exact law of a
bridge's maximum and minimum. Activity follows the simulator too: Poisson trade counts whose rate
rises with volatility, log-normal trade notionals (summed as a gamma with the same mean and
variance), taker buys leaning with the move. Longer candles aggregate the steps.

The path is anchored at its end: the last close is each symbol's start price, and the history
ends at ``end_ms``, where the live simulator starts. Candles that ``end_ms`` cuts are returned as
candles in progress, for the live candle fold to continue, so there is no gap and no overlap.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import ndtr

from coincast.domain import Candle, ConfigError, FoldState, Interval
from coincast.domain.market import F64, I64
from coincast.lake.parquet import ParquetLake, conform, frame_to_candles
from coincast.sources.simulator import _QTY_SIGMA, SimParams, _Engine, _round_to
from coincast.store.base import BulkCandleStore, CandleStore

DAY_MS = 86_400_000
FINE = Interval.M1  # step of the recent past
COARSE = Interval.M5  # step of the deep past
FINE_DAYS = 7  # minute candles: a week (10 080 per symbol)
MID_DAYS = 60  # 5- to 30-minute candles: two months
_LIVE_TICK_MS = 250  # the live simulator's tick: how many ticks a step's taker lean averages over


def history_windows(intervals: Sequence[Interval], days: int) -> dict[Interval, int]:
    """How far back (ms) each interval's history goes when ``days`` of history are asked for.

    Minute candles get at most :data:`FINE_DAYS`, candles shorter than an hour at most
    :data:`MID_DAYS`, hour and day candles all ``days``. Intervals shorter than a minute or not
    a whole number of minutes get none (the live simulator's own warm-up covers them).
    """
    out: dict[Interval, int] = {}
    for iv in intervals:
        if iv.ms < FINE.ms or iv.ms % FINE.ms:
            continue
        cap = FINE_DAYS if iv.ms < COARSE.ms else MID_DAYS if iv.ms < Interval.H1.ms else days
        out[iv] = min(days, cap) * DAY_MS
    return {iv: w for iv, w in out.items() if w > 0}


@dataclass(frozen=True, slots=True)
class SimHistory:
    """Generated history ending at ``end_ms``.

    Attributes:
        end_ms: where the history ends and the live simulator starts (exclusive).
        frames: closed candles per interval, every symbol, in the lake's columns.
        open_candles: the candles ``end_ms`` cuts (``closed`` False), for the live fold.
        last_close: each symbol's price at ``end_ms`` (its profile price).
    """

    end_ms: int
    frames: dict[Interval, pl.DataFrame]
    open_candles: tuple[Candle, ...]
    last_close: dict[str, float]

    @property
    def candles(self) -> int:
        return sum(f.height for f in self.frames.values())


@dataclass(frozen=True, slots=True)
class _Bars:
    """Candles of all symbols on one time grid: ``open_ms`` (n,), the rest (n, symbols)."""

    open_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    quote: F64
    trades: I64
    buy: F64
    buy_quote: F64

    def cat(self, other: _Bars) -> _Bars:
        return _Bars(*(np.concatenate([a, b]) for a, b in zip(self._cols(), other._cols(), strict=True)))

    def _cols(self) -> tuple[np.ndarray, ...]:
        return (self.open_ms, self.open, self.high, self.low, self.close, self.volume, self.quote,
                self.trades, self.buy, self.buy_quote)

    def resample(self, step_ms: int) -> _Bars:
        """Candles of ``step_ms`` (epoch-aligned) from these consecutive, gap-free ones."""
        keys = self.open_ms // step_ms
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(keys)] - 1
        add = np.add.reduceat
        return _Bars(
            keys[starts] * step_ms, self.open[starts], np.maximum.reduceat(self.high, starts),
            np.minimum.reduceat(self.low, starts), self.close[ends], add(self.volume, starts),
            add(self.quote, starts), add(self.trades, starts), add(self.buy, starts), add(self.buy_quote, starts),
        )


def simulate_history(params: SimParams, end_ms: int, windows: Mapping[Interval, int]) -> SimHistory:
    """Candles of ``params.symbols`` for ``windows[interval]`` ms before ``end_ms``.

    Same params and ``end_ms`` give the same history. The random stream is separate from the
    live simulator's (same seed), so the live market does not replay the history's shocks.

    Raises:
        ConfigError: ``end_ms`` not on a minute boundary, or an interval with no whole minutes.
    """
    if end_ms % FINE.ms:
        raise ConfigError(f"simulated history must end on a minute boundary, not at {end_ms} ms")
    if bad := [iv.value for iv in windows if iv.ms < FINE.ms or iv.ms % FINE.ms]:
        raise ConfigError(f"simulated history is drawn in minutes; intervals {bad} cannot be generated")
    prices = {s: params.profile(s).price for s in params.symbols}
    if not windows:
        return SimHistory(end_ms, {}, (), prices)
    coarse_ivs = [iv for iv in windows if iv.ms % COARSE.ms == 0]
    fine_ms = max((w for iv, w in windows.items() if iv.ms % COARSE.ms), default=0)
    longest = max(windows, key=lambda iv: iv.ms)
    start = (end_ms - max(windows.values())) // longest.ms * longest.ms
    fine_start = max(start, (end_ms - max(fine_ms, COARSE.ms)) // COARSE.ms * COARSE.ms) if coarse_ivs else (
        (end_ms - fine_ms) // FINE.ms * FINE.ms)
    rng = np.random.default_rng([params.seed, 0x5EED])
    coarse, fine = _Engine(params, start, COARSE.ms), _Engine(params, fine_start, FINE.ms)
    coarse.rng = fine.rng = rng
    n_coarse, n_fine = (fine_start - start) // COARSE.ms, (end_ms - fine_start) // FINE.ms
    ret_c, g_c, sd_c = coarse.returns(n_coarse)
    fine.g = coarse.g  # the same variance multiplier carries on at the finer step
    ret_f, g_f, sd_f = fine.returns(n_fine)
    # Anchor at the end: the last close is the start price, earlier closes subtract later returns.
    ret = np.vstack([ret_c, ret_f])
    logp_end = np.log([prices[s] for s in params.symbols])
    cum = np.cumsum(ret, axis=0)
    close = logp_end + cum - cum[-1]
    bars_c = _bars(coarse, start + COARSE.ms * np.arange(n_coarse), close[:n_coarse] - ret_c, ret_c, sd_c, g_c)
    bars_f = _bars(fine, fine_start + FINE.ms * np.arange(n_fine), close[n_coarse:] - ret_f, ret_f, sd_f, g_f)
    unified = bars_c.cat(bars_f.resample(COARSE.ms)) if coarse_ivs else bars_f
    frames: dict[Interval, pl.DataFrame] = {}
    open_candles: list[Candle] = []
    for iv, window in windows.items():
        bars = (unified if iv.ms % COARSE.ms == 0 else bars_f).resample(iv.ms)
        cut = bars.open_ms + iv.ms > end_ms
        keep = ~cut & (bars.open_ms >= (end_ms - window) // iv.ms * iv.ms)
        frames[iv] = _frame(params, bars, keep)
        open_candles += _candles(params, iv, bars, cut)
    return SimHistory(end_ms, frames, tuple(open_candles), prices)


def _bars(engine: _Engine, open_ms: I64, open_log: F64, ret: F64, sd: F64, g: F64) -> _Bars:
    """OHLCV of steps with log open ``open_log`` and log return ``ret`` (steps, symbols)."""
    rng, p, step_s = engine.rng, engine.p, engine.tick_ms / 1000.0
    # Max and min of a Brownian bridge from 0 to r with variance sd**2: inverse of
    # P(max > m) = exp(-2 m (m - r) / sd**2), m >= max(0, r); the min is the mirror image.
    var = sd**2
    up = 0.5 * (ret + np.sqrt(ret**2 - 2.0 * var * np.log(rng.random(ret.shape))))
    down = 0.5 * (ret - np.sqrt(ret**2 - 2.0 * var * np.log(rng.random(ret.shape))))
    ticks = [np.vstack([_round_to(np.exp(open_log + x)[:, s], prof.tick) for s, prof in enumerate(engine.prof)]).T
             for x in (0.0, up, down, ret)]
    o, h, lo, c = ticks
    h, lo = np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c))
    trades = rng.poisson(engine.rate * step_s * (0.5 + 0.5 * g)).astype(np.int64)
    # Sum of n log-normal notionals: a gamma with the sum's mean and variance.
    cv2 = math.expm1(_QTY_SIGMA**2)
    mean = np.array([prof.notional for prof in engine.prof]) * math.exp(_QTY_SIGMA**2 / 2.0)
    quote = np.where(trades > 0, rng.gamma(np.maximum(trades, 1) / cv2, mean * cv2), 0.0)
    # Taker buys lean with the move: the simulator tilts each tick by side_bias * sign(tick return).
    lean = 2.0 * ndtr(ret / np.maximum(sd, 1e-12) / math.sqrt(engine.tick_ms / _LIVE_TICK_MS)) - 1.0
    buys = rng.binomial(trades, np.clip(0.5 + p.side_bias * lean, 0.0, 1.0))
    buy_quote = quote * np.divide(buys, trades, out=np.zeros(trades.shape), where=trades > 0)
    typical = np.exp(open_log + 0.5 * ret)
    return _Bars(open_ms.astype(np.int64), o, h, lo, c, quote / typical, quote, trades, buy_quote / typical, buy_quote)


def _frame(params: SimParams, bars: _Bars, keep: np.ndarray) -> pl.DataFrame:
    """Rows ``keep`` of every symbol, in the lake's columns, sorted by symbol and time."""
    k, n = len(params.symbols), int(keep.sum())
    cols = {name: getattr(bars, attr)[keep].T.ravel() for name, attr in (
        ("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"), ("volume", "volume"),
        ("quote_volume", "quote"), ("trades", "trades"), ("taker_buy_base", "buy"), ("taker_buy_quote", "buy_quote"))}
    return conform(pl.DataFrame({
        "symbol": np.repeat(np.array(params.symbols, dtype=object), n).tolist() if k else [],
        "open_time": np.tile(bars.open_ms[keep], k),
        **cols,
    }))


def _candles(params: SimParams, interval: Interval, bars: _Bars, rows: np.ndarray) -> list[Candle]:
    """Rows ``rows`` as candles in progress."""
    return [
        Candle(sym, interval, int(bars.open_ms[i]), float(bars.open[i, s]), float(bars.high[i, s]),
               float(bars.low[i, s]), float(bars.close[i, s]), float(bars.volume[i, s]), float(bars.quote[i, s]),
               int(bars.trades[i, s]), float(bars.buy[i, s]), float(bars.buy_quote[i, s]), closed=False)
        for i in np.flatnonzero(rows) for s, sym in enumerate(params.symbols)
    ]


async def seed_history(
    history: SimHistory, symbols: Sequence[str], store: CandleStore, lake: ParquetLake | None
) -> int:
    """Store ``symbols``' part of ``history`` like real history: serving store, lake, live fold.

    The candles in progress go into the store's fold state of these symbols, with their
    watermarks at ``history.end_ms``, so the live candle fold continues them. Returns the number
    of closed candles written to the store.
    """
    wanted = set(symbols)
    written = 0
    for iv, frame in history.frames.items():
        part = frame.filter(pl.col("symbol").is_in(wanted))
        if isinstance(store, BulkCandleStore):
            written += await store.upsert_arrow(part.select(
                "symbol", pl.lit(iv.value).alias("interval"), pl.col("open_time").dt.epoch("ms").alias("open_time"),
                "open", "high", "low", "close", "volume", "quote_volume", "trades",
                pl.col("taker_buy_base").alias("taker_buy_volume"),
                pl.col("taker_buy_quote").alias("taker_buy_quote_volume"),
            ).to_arrow())
        else:
            for lo in range(0, part.height, 50_000):
                written += await store.upsert(frame_to_candles(part.slice(lo, 50_000), iv))
        if lake is not None:
            await asyncio.to_thread(lake.write, part, iv)
    await store.save_fold(FoldState(  # replaces the state of these symbols only
        open_candles=tuple(c for c in history.open_candles if c.symbol in wanted),
        max_trade_ids={},
        watermarks_ms=dict.fromkeys(wanted, history.end_ms),
    ))
    return written
