"""A synthetic live market for the fake exchange, its exact candles, and the fake on its own thread.

Prices are multiples of 1/64 and quantities multiples of 1/256, so every price, quantity and
``price * qty`` is exact in binary floating point and every sum of them is too (far below 2**53
units): a candle's volume is the same float whatever order or batching the pipeline sums it in.
Tests can therefore compare OHLCV, trade counts and quote/taker volumes with ``==``.

Use::

    rng = np.random.default_rng(seed)
    markets = synthetic_markets(rng, ["BTCUSDT", "ETHUSDT"], n=6_000)
    with ThreadedFake(fixtures, markets, trades_per_tick=1, tick_s=0.05) as fake:
        ...                      # fake.server.ws_url / rest_url; fake.call(fn) runs fn on its loop
    want = truth(markets[0], Interval.M1)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from coincast.domain import Interval
from tests.fakes.binance_server import FakeBinance, Market

T = TypeVar("T")

PRICE_STEP = 1 / 64
QTY_STEP = 1 / 256
BASE_PRICES = {"BTCUSDT": 30_000.0, "ETHUSDT": 2_000.0, "SOLUSDT": 20.0, "BNBUSDT": 300.0}


def synthetic_markets(rng: np.random.Generator, symbols: Iterable[str], n: int) -> list[Market]:
    """``n`` trades per symbol: consecutive ids (a different range per symbol), a random walk of
    exactly representable prices, exactly representable quantities, random aggressor side.

    Times are placeholders: the fake stamps each trade with the wall clock as it releases it
    (``live_times=True``).
    """
    out = []
    for k, symbol in enumerate(symbols):
        base = BASE_PRICES.get(symbol, 100.0)
        ticks = max(1, int(base / 2_000 / PRICE_STEP))  # ~0.05 % of the price per step
        walk = np.cumsum(rng.integers(-3, 4, n)) * ticks
        price_units = np.maximum(int(base / PRICE_STEP) + walk, 1)  # in PRICE_STEPs, never <= 0
        qty_units = rng.integers(1, 2_048, n)  # 1/256 .. 8 units
        first_id = 1_000_000 * (k + 1) + int(rng.integers(0, 1_000))
        out.append(Market(
            symbol,
            np.arange(first_id, first_id + n, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
            price_units.astype(np.float64) * PRICE_STEP,
            qty_units.astype(np.float64) * QTY_STEP,
            rng.random(n) < 0.5,
        ))
    return out


@dataclass(frozen=True, slots=True)
class Bar:
    """One candle as the exchange traded it (or as coincast stored it): every summed field."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote_volume: float

    @classmethod
    def of(cls, c: Any) -> Bar:
        """From a :class:`coincast.domain.Candle` or the API's candle dict."""
        get = c.get if isinstance(c, Mapping) else lambda k: getattr(c, k)
        return cls(*(get(f) for f in cls.__slots__))


def truth(m: Market, interval: Interval, released: int | None = None) -> dict[int, Bar]:
    """The exchange's candles (open ms -> :class:`Bar`) of the first ``released`` trades of ``m``
    (default: every trade the fake has released), ordered by (trade time, trade id)."""
    n = m.cursor if released is None else released
    order = np.lexsort((m.ids[:n], m.times[:n]))
    t, p, q, maker = m.times[:n][order], m.prices[:n][order], m.qtys[:n][order], m.makers[:n][order]
    out: dict[int, Bar] = {}
    if n == 0:
        return out
    bucket = t - t % interval.ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    for s, e in zip(starts, [*starts[1:], len(t)], strict=True):
        pp, qq, taker = p[s:e], q[s:e], ~maker[s:e]
        quote = pp * qq
        out[int(bucket[s])] = Bar(
            float(pp[0]), float(pp.max()), float(pp.min()), float(pp[-1]), float(qq.sum()), float(quote.sum()),
            int(e - s), float(qq[taker].sum()), float(quote[taker].sum()),
        )
    return out


def diff_bars(want: Mapping[int, Bar], got: Mapping[int, Bar]) -> list[str]:
    """Human-readable differences, one line per candle: missing, extra (traded nothing) or wrong.

    A stored zero-trade candle where nothing traded is fine (a quiet interval closes empty).
    """
    lines = []
    for t in sorted(set(want) | set(got)):
        w, g = want.get(t), got.get(t)
        when = f"{t} ({datetime.fromtimestamp(t / 1000, UTC):%H:%M:%S})"
        if g is None:
            lines.append(f"{when}: MISSING (want {w})")
        elif w is None:
            if g.trades:
                lines.append(f"{when}: EXTRA {g}")
        elif g != w:
            fields = [f"{f} got {getattr(g, f)!r} want {getattr(w, f)!r}" for f in Bar.__slots__
                      if f != "trades" and getattr(g, f) != getattr(w, f)]
            lines.append(f"{when}: trades {g.trades} want {w.trades} ({g.trades - w.trades:+d}); " + "; ".join(fields))
    return lines


class ThreadedFake:
    """A :class:`FakeBinance` serving from a background thread with its own event loop, so a
    synchronous test can start processes, sleep and poll while the market keeps trading."""

    def __init__(self, fixtures: Path, markets: list[Market], **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-binance", daemon=True)
        self.server = FakeBinance(fixtures, markets, live_times=True, **options)

    def __enter__(self) -> ThreadedFake:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self._loop).result(30)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.__aexit__(et, e, tb), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the fake's loop and return its result (no race with the market)."""

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def released(self) -> dict[str, int]:
        """Trades released so far per symbol, read on the fake's loop."""
        return self.call(lambda: {s: m.cursor for s, m in self.server.markets.items()})
