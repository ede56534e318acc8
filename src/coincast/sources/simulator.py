"""The built-in market simulator: a seeded, multi-asset trade stream that works offline.

Model (per tick of ``tick_ms``, all symbols at once with numpy). A market factor and one
idiosyncratic component per symbol get standardised Student-t shocks ``z`` and Poisson jumps.
Symbol ``s`` with loading ``L`` and annual volatility ``vol`` moves by
``vol * (L * x_market + sqrt(1 - L**2) * x_s)`` where ``x = sqrt((1 - jump_share) * dt * g) * z +
jumps`` has variance ``dt`` per tick. ``g`` is one market-wide GARCH(1,1) variance multiplier
(mean 1) driven by the market shock: crypto volatility is mostly market-wide, and a common ``g``
keeps the conditional correlation of two symbols at exactly ``L_a * L_b`` at every horizon
(:meth:`SimParams.correlation`), so the setting can be checked on a short sample. The GARCH
parameters come from a half-life and the stationary variance of ``g``, so the statistics hardly
depend on ``tick_ms`` (Nelson's diffusion limit of GARCH(1,1)).

Trades arrive as a Poisson process whose rate rises and falls with ``g`` (mean rate unchanged);
inside a tick they get sorted uniform times and prices on a Brownian bridge to the tick's end price, so
1-minute OHLC looks real. Prices and quantities are rounded to Binance-like tick and lot sizes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import islice
from types import MappingProxyType

import numpy as np

from coincast.domain import DEFAULT_SYMBOLS, Clock, ConfigError, TradeBatch
from coincast.domain.market import F64, I64, Bool
from coincast.sources.base import SourceHealth

_YEAR_S = 365.25 * 86_400.0
_QTY_SIGMA = 1.4  # log-normal spread of trade notionals: many small trades, a few large ones


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """How one symbol trades.

    Attributes:
        price: start price in quote currency. vol: annualised volatility of log returns.
        rate: mean trades per second. loading: loading on the market factor, in [0, 1].
        tick: price step. lot: quantity step. notional: median trade size in quote currency.
    """

    price: float
    vol: float
    rate: float
    loading: float
    tick: float
    lot: float
    notional: float


# Recent price levels; vols, loadings and relative activity after Binance spot (hourly return
# correlations in 2023: BTC-ETH 0.89, other pairs 0.50-0.78, XRP the loosest).
PROFILES: Mapping[str, SymbolProfile] = MappingProxyType(
    {
        "BTCUSDT": SymbolProfile(95_000.0, 0.45, 60.0, 0.92, 0.01, 0.00001, 800.0),
        "ETHUSDT": SymbolProfile(3_300.0, 0.55, 35.0, 0.92, 0.01, 0.0001, 500.0),
        "BNBUSDT": SymbolProfile(650.0, 0.50, 8.0, 0.78, 0.01, 0.001, 300.0),
        "XRPUSDT": SymbolProfile(2.3, 0.75, 20.0, 0.62, 0.0001, 0.1, 250.0),
        "ADAUSDT": SymbolProfile(0.9, 0.70, 8.0, 0.82, 0.0001, 0.1, 150.0),
        "SOLUSDT": SymbolProfile(190.0, 0.80, 25.0, 0.78, 0.01, 0.001, 300.0),
        "DOGEUSDT": SymbolProfile(0.32, 0.80, 15.0, 0.72, 0.00001, 1.0, 150.0),
        "DOTUSDT": SymbolProfile(6.5, 0.65, 3.0, 0.85, 0.001, 0.01, 100.0),
        "LTCUSDT": SymbolProfile(100.0, 0.70, 4.0, 0.80, 0.01, 0.001, 150.0),
        "LINKUSDT": SymbolProfile(20.0, 0.70, 5.0, 0.82, 0.01, 0.01, 150.0),
    }
)
DEFAULT_PROFILE = SymbolProfile(10.0, 0.80, 3.0, 0.70, 0.001, 0.01, 100.0)
_Columns = tuple[I64, I64, F64, F64, Bool]  # trade_id, event_ms, price, qty, is_buyer_maker


@dataclass(frozen=True, slots=True)
class SimParams:
    """Settings of the simulated market (validated on construction).

    Attributes:
        symbols: symbols to simulate; ones without a profile get ``DEFAULT_PROFILE``.
        seed: seed of the one random generator; same seed and start give the same stream.
        profiles: per-symbol profiles (override ``PROFILES`` to change levels or rates).
        rate_scale: multiplies every trade rate (small for tests, large for benchmarks).
        nu: Student-t degrees of freedom of the shocks; above 4 so the GARCH has a variance.
        vol_half_life_s: half-life of volatility shocks, seconds.
        vol_of_vol: stationary variance of the variance multipliers (mean 1).
        jump_rate_per_day: jumps per day of the market factor and of each symbol's own part.
        jump_share: fraction of return variance that comes from jumps.
        side_bias: taker buys have probability ``0.5 + side_bias * sign(tick return)``.

    Raises:
        ConfigError: naming the bad field and what is accepted.
    """

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    seed: int = 7
    profiles: Mapping[str, SymbolProfile] = field(default_factory=lambda: PROFILES)
    rate_scale: float = 1.0
    nu: float = 5.0
    vol_half_life_s: float = 3_600.0
    vol_of_vol: float = 2.0
    jump_rate_per_day: float = 1.0
    jump_share: float = 0.05
    side_bias: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "symbols: need at least one, no duplicates": bool(self.symbols)
            and len(set(self.symbols)) == len(self.symbols),
            f"rate_scale {self.rate_scale}: must be > 0": self.rate_scale > 0,
            f"nu {self.nu}: must be > 4 (finite kurtosis)": self.nu > 4,
            f"vol_half_life_s {self.vol_half_life_s}: must be > 0": self.vol_half_life_s > 0,
            f"vol_of_vol {self.vol_of_vol}: must be > 0": self.vol_of_vol > 0,
            f"jump_rate_per_day {self.jump_rate_per_day}: must be > 0": self.jump_rate_per_day > 0,
            f"jump_share {self.jump_share}: must be in [0, 1)": 0 <= self.jump_share < 1,
            f"side_bias {self.side_bias}: must be in [0, 0.5]": 0 <= self.side_bias <= 0.5,
        }
        for s in self.symbols:
            p = self.profile(s)
            checks[f"{s} profile {p}: need positive price, vol, rate, tick, lot, notional"] = (
                min(p.price, p.vol, p.rate, p.tick, p.lot, p.notional) > 0
            )
            checks[f"{s} loading {p.loading}: must be in [0, 1]"] = 0 <= p.loading <= 1
        if bad := [msg for msg, ok in checks.items() if not ok]:
            raise ConfigError("invalid simulator settings: " + "; ".join(bad))

    def profile(self, symbol: str) -> SymbolProfile:
        """The profile of ``symbol``, or ``DEFAULT_PROFILE`` for symbols without one."""
        return self.profiles.get(symbol, DEFAULT_PROFILE)

    def correlation(self) -> F64:
        """Model correlation matrix of log returns at any horizon (order of ``symbols``)."""
        loads = np.array([self.profile(s).loading for s in self.symbols])
        corr = np.outer(loads, loads)
        np.fill_diagonal(corr, 1.0)
        return corr


def _decimals(step: float) -> int:
    return max(0, -int(Decimal(str(step)).normalize().as_tuple().exponent))


def _round_to(x: F64, step: float) -> F64:
    # Round to the step, then to its decimals, so 0.1 steps print as 0.1 and not 0.30000000000000004.
    return np.round(np.maximum(np.round(x / step), 1.0) * step, _decimals(step))


def garch_path(g0: float, coef: F64, omega: float, block: int = 64) -> tuple[F64, float]:
    """The GARCH(1,1) variance recursion ``g[t+1] = omega + coef[t] * g[t]`` without a loop per step.

    Within a block of ``block`` steps the recursion has the closed form
    ``g[t] = P[t] * (g[0] + omega * sum(1 / P[1..t]))`` with ``P`` the running product of ``coef``;
    blocks stay short so ``P`` neither underflows nor overflows.

    Returns:
        ``(g, g_next)``: the multiplier in force during each step (``g[0] = g0``) and the one after
        the last step.
    """
    n = len(coef)
    out = np.empty(n)
    state = g0
    for lo in range(0, n, block):
        c = coef[lo:lo + block]
        prod = np.cumprod(c)  # prod[t] = coef[lo] * ... * coef[lo + t]
        # g[lo + t + 1] = prod[t] * (state + omega * sum_{j <= t} 1 / prod[j])
        after = prod * (state + omega * np.cumsum(1.0 / prod))
        out[lo] = state
        out[lo + 1:lo + len(c)] = after[:-1]
        state = float(after[-1])
    return out, state


class _Engine:
    """The state of the simulated market; :meth:`chunk` advances it by whole ticks."""

    def __init__(self, params: SimParams, start_ms: int, tick_ms: int) -> None:
        if tick_ms <= 0:
            raise ConfigError(f"simulator tick_ms {tick_ms}: must be a positive number of ms")
        self.p, self.tick_ms, self.next_ms = params, tick_ms, start_ms
        self.prof = [params.profile(s) for s in params.symbols]
        self.rng = np.random.default_rng(params.seed)
        k = len(params.symbols)
        loads = np.array([p.loading for p in self.prof])
        self.load, self.idio = loads, np.sqrt(1.0 - loads**2)
        self.vol = np.array([p.vol for p in self.prof])
        self.rate = np.array([p.rate for p in self.prof]) * params.rate_scale
        self.logp = np.log([p.price for p in self.prof])
        self.g = 1.0  # market-wide variance multiplier
        # Trade ids start from the start time so a restarted simulator never reuses an id.
        self.next_id = np.full(k, start_ms * 1000, dtype=np.int64)
        dt = tick_ms / 1000.0 / _YEAR_S
        decay = math.log(2.0) * tick_ms / 1000.0 / params.vol_half_life_s
        nu, v = params.nu, params.vol_of_vol
        kurt_z = 3.0 * (nu - 2.0) / (nu - 4.0)  # E[z**4] of a unit-variance Student-t
        # GARCH g' = omega + (beta + alpha z^2) g: persistence alpha + beta from the half-life, alpha
        # from the stationary Var(g) = v in the diffusion limit; omega keeps E[g] = 1.
        self.alpha = math.sqrt(2.0 * decay * v / ((1.0 + v) * (kurt_z - 1.0)))
        self.beta = math.exp(-decay) - self.alpha
        self.omega = 1.0 - self.alpha - self.beta
        # E[(beta + alpha z^2)^2] < 1: Var(g) is finite at this tick length.
        if self.beta <= 0 or self.beta**2 + 2 * self.alpha * self.beta + self.alpha**2 * kurt_z >= 1:
            raise ConfigError(f"simulator tick_ms {tick_ms}: too long for this vol_half_life_s, vol_of_vol, nu")
        self.dt, self.tscale = dt, math.sqrt((nu - 2.0) / nu)
        self.jump_lam = params.jump_rate_per_day * tick_ms / 86_400_000.0
        self.jump_sd = math.sqrt(params.jump_share / (params.jump_rate_per_day * 365.25))
        self.size = max(32, 60_000 // tick_ms)  # about a minute of ticks per chunk, 32 at least

    def returns(self, n: int) -> tuple[F64, F64, F64]:
        """Draw the next ``n`` ticks of log returns and advance the volatility state.

        Returns:
            ``(ret, g, diffusion_sd)``: log returns ``(n, symbols)``; the market variance multiplier
            in force during each tick ``(n, 1)``; the standard deviation of each tick's diffusive
            (non-jump) part ``(n, symbols)``, which shapes the path inside the tick.
        """
        p, rng, k = self.p, self.rng, len(self.p.symbols)
        z = rng.standard_t(p.nu, (n, k + 1)) * self.tscale
        g, self.g = garch_path(self.g, self.beta + self.alpha * z[:, 0] ** 2, self.omega)
        g = g[:, None]
        jumps = np.sqrt(rng.poisson(self.jump_lam, (n, k + 1))) * rng.standard_normal((n, k + 1))
        x = np.sqrt((1.0 - p.jump_share) * self.dt * g) * z + self.jump_sd * jumps
        ret = self.vol * (self.load * x[:, :1] + self.idio * x[:, 1:])  # (ticks, symbols)
        return ret, g, self.vol * np.sqrt((1.0 - p.jump_share) * self.dt * g)

    def chunk(self) -> Iterator[tuple[int, list[TradeBatch]]]:
        """Simulate the next ``size`` ticks: ``(tick end ms, batches)`` per tick, in time order.

        Prices and trades are drawn for the whole chunk at once; batches are cut lazily, tick by
        tick, so a live source does not stall while a chunk's batches are built.
        """
        p, rng, n, k = self.p, self.rng, self.size, len(self.p.symbols)
        ret, g, bridge_sd = self.returns(n)
        ends = self.logp + np.cumsum(ret, axis=0)
        starts = np.vstack([self.logp, ends[:-1]])
        self.logp = ends[-1]
        # Activity follows market volatility; the mean rate stays ``rate`` because E[g] = 1.
        counts = rng.poisson(self.rate * self.tick_ms / 1000.0 * (0.5 + 0.5 * g))
        cols = [self._trades(s, counts[:, s], starts[:, s], ret[:, s], bridge_sd[:, s]) for s in range(k)]
        t0, self.next_ms = self.next_ms, self.next_ms + n * self.tick_ms
        offsets = np.vstack([np.zeros(k, np.int64), np.cumsum(counts, axis=0)]).T.tolist()
        for t in range(n):
            batches = []
            for s, sym in enumerate(p.symbols):
                lo, hi = offsets[s][t], offsets[s][t + 1]
                if hi > lo:
                    ids, ms, px, qty, bm = cols[s]
                    batches.append(TradeBatch(sym, ids[lo:hi], ms[lo:hi], px[lo:hi], qty[lo:hi], bm[lo:hi]))
            yield t0 + (t + 1) * self.tick_ms, batches

    def _trades(self, s: int, counts: I64, start: F64, ret: F64, sd: F64) -> _Columns:
        """All trades of symbol ``s`` in this chunk, in time order, as columns."""
        rng, prof, total = self.rng, self.prof[s], int(counts.sum())
        tick = np.repeat(np.arange(len(counts)), counts)
        u = np.sort(tick + rng.random(total)) - tick  # sorted fractions of each tick
        first = np.ones(total, np.bool_)
        first[1:] = tick[1:] != tick[:-1]
        du = np.diff(u, prepend=0.0)
        du[first] = u[first]
        # Brownian bridge per tick: a walk restarted at each tick's first trade, pinned to 0 at its end.
        step = np.sqrt(np.maximum(du, 0.0)) * rng.standard_normal(total)
        walk = np.cumsum(step)
        sizes = counts[counts > 0]
        walk -= np.repeat((walk - step)[first], sizes)
        last = np.cumsum(sizes) - 1
        pin = walk[last] + np.sqrt(np.maximum(1.0 - u[last], 0.0)) * rng.standard_normal(len(last))
        logp = start[tick] + u * ret[tick] + sd[tick] * (walk - u * np.repeat(pin, sizes))
        price = _round_to(np.exp(logp), prof.tick)
        qty = _round_to(np.exp(math.log(prof.notional) - logp + _QTY_SIGMA * rng.standard_normal(total)), prof.lot)
        maker = rng.random(total) < 0.5 - self.p.side_bias * np.sign(ret[tick])
        ms = self.next_ms + tick * self.tick_ms + (u * self.tick_ms).astype(np.int64)
        ids = self.next_id[s] + np.arange(total, dtype=np.int64)
        self.next_id[s] += total
        return ids, ms, price, qty, maker

    def ticks(self) -> Iterator[tuple[int, list[TradeBatch]]]:
        """Every tick from now on, endlessly: ``(tick end ms, batches)``."""
        while True:
            yield from self.chunk()


def generate(params: SimParams, start_ms: int, duration_ms: int, tick_ms: int = 250) -> Iterator[TradeBatch]:
    """The simulated trades of ``[start_ms, start_ms + duration_ms)`` without waiting (tests, benchmarks).

    Yields, tick after tick, one batch per symbol that traded in the tick; only whole ticks are
    generated (``duration_ms // tick_ms`` of them). The stream is exactly what
    :class:`MarketSimulator` yields when started at ``start_ms`` with the same params and tick.

    Raises:
        ConfigError: when ``tick_ms`` is not positive.
    """
    ticks = _Engine(params, start_ms, tick_ms).ticks()
    for _, batches in islice(ticks, max(0, duration_ms // tick_ms)):
        yield from batches


class MarketSimulator:
    """A :class:`~coincast.sources.base.Source` of simulated trades paced by a clock.

    The tick grid starts at the clock's time at construction, floored to ``tick_ms``. A tick's
    trades are yielded once the clock passes the tick's end; when the source falls behind (a slow
    consumer, a suspended laptop) it catches up without sleeping, so it never drifts from the clock.
    ``health.messages`` counts trades.
    """

    name = "sim"

    #: while catching up, consecutive ticks are merged into one batch per symbol up to this size
    CATCH_UP_TRADES = 50_000

    def __init__(self, params: SimParams, clock: Clock, *, tick_ms: int = 250, start_ms: int | None = None) -> None:
        self.params, self.clock, self.tick_ms = params, clock, tick_ms
        now = clock.now_ms() if start_ms is None else start_ms
        self.start_ms = now - now % max(tick_ms, 1)
        self._ticks = _Engine(params, self.start_ms, tick_ms).ticks()  # raises on a bad tick_ms
        self._watermark = self.start_ms
        self._closed = False
        detail = {"seed": str(params.seed), "tick_ms": str(tick_ms), "symbols": str(len(params.symbols))}
        self.health = SourceHealth(name="sim", simulated=True, connected=True, detail=detail)

    def watermark_ms(self) -> int:
        """End (exclusive, ms) of the last tick whose trades have all been handed out.

        It moves as the last batch of a tick is yielded, so a consumer that reads it after taking
        a batch never sees it ahead of a trade it has not received.
        """
        return self._watermark

    async def events(self) -> AsyncIterator[TradeBatch]:
        """Yield each tick's batches when the clock reaches the tick's end, until closed.

        A source started in the past (``start_ms``: warm-up history) or fallen behind catches up
        without sleeping, merging consecutive ticks into one batch per symbol so the pipeline
        takes the backlog in large bites.
        """
        pending: dict[str, list[TradeBatch]] = {}
        size = 0
        while not self._closed:
            end_ms, batches = next(self._ticks)
            behind = self.clock.now_ms() - end_ms > self.tick_ms
            if behind:
                for b in batches:
                    pending.setdefault(b.symbol, []).append(b)
                    size += len(b)
                if size < self.CATCH_UP_TRADES:
                    continue
                batches, pending, size = _merge(pending), {}, 0
            elif pending:
                batches, pending, size = [*_merge(pending), *batches], {}, 0
            while not self._closed and (wait_ms := end_ms - self.clock.now_ms()) > 0:
                # Capped at one tick so a clock moved by hand (ManualClock) is noticed promptly.
                await asyncio.sleep(min(wait_ms, self.tick_ms) / 1000.0)
            if self._closed:
                return
            now = self.clock.now_ms()
            for i, batch in enumerate(batches, 1):
                self.health.messages += len(batch)
                self.health.last_message_ms = now
                if i == len(batches):  # the consumer holds every trade before end_ms with this one
                    self._watermark = end_ms
                yield replace(batch, recv_ms=now)
            self._watermark = end_ms
            await asyncio.sleep(0)  # stay fair to other tasks while catching up

    async def close(self) -> None:
        """Stop :meth:`events` at its next tick and mark the source disconnected."""
        self._closed = True
        self.health.connected = False


def _merge(pending: dict[str, list[TradeBatch]]) -> list[TradeBatch]:
    """One batch per symbol from consecutive ticks (time order kept)."""
    out = []
    for sym, parts in pending.items():
        if len(parts) == 1:
            out.append(parts[0])
            continue
        out.append(TradeBatch(
            sym,
            np.concatenate([p.trade_id for p in parts]),
            np.concatenate([p.event_ms for p in parts]),
            np.concatenate([p.price for p in parts]),
            np.concatenate([p.qty for p in parts]),
            np.concatenate([p.is_buyer_maker for p in parts]),
        ))
    return out
