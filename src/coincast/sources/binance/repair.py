"""Gap repair: refill missing trade ids from REST (``fromId`` pagination, 1000 per page).

:func:`refill` fetches one id range; :class:`GapRepairer` runs one worker per symbol that takes
every open gap of the symbol in one pass, resumes from the last delivered id after a reconnect,
gives up on what REST cannot supply (reported, never chased forever) and stops asking for a
while when REST itself fails, so a dead REST endpoint does not hold the watermark on every gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np
from prometheus_client import Counter

from coincast.domain import Clock, CoincastError, InvalidRequest, TradeBatch, TransientError
from coincast.sources.base import SourceHealth
from coincast.sources.binance.gaps import IdTracker
from coincast.sources.binance.rest import TRADES_LIMIT, IpBanned, TradePage
from coincast.sources.binance.wire import TradeRow

log = logging.getLogger(__name__)

GAPS = Counter("coincast_binance_gaps", "Trade-id gaps found on the Binance stream", ["symbol"])
GAPS_REPAIRED = Counter("coincast_binance_gaps_repaired", "Gaps filled from Binance REST", ["symbol"])


class RepairFailed(CoincastError):
    """REST could not supply the range; ``got`` trades were delivered before giving up.

    ``rest_down`` is True when REST itself failed or refused (as opposed to a range too long to
    chase): the caller stops asking for a while instead of holding the watermark on each gap.
    """

    def __init__(self, message: str, got: int, *, rest_down: bool = True) -> None:
        super().__init__(message)
        self.got = got
        self.rest_down = rest_down


async def refill(
    fetch: Callable[[int], Awaitable[TradePage]],
    deliver: Callable[[list[TradeRow]], Awaitable[None]],
    lo: int,
    hi: int | None,
    *,
    still_missing: Callable[[], bool],
    attempts: int = 5,
    max_pages: int = 500,
) -> int:
    """Fetch ids ``lo..hi`` (``hi`` None: up to the present) and deliver them; returns how many.

    Stops when nothing in the range is missing any more, when a short page says the present was
    reached, or after ``max_pages`` (a very long outage: the rest is reported, not chased).

    Raises:
        IpBanned: HTTP 418 (never retried).
        RepairFailed: the range could not be fetched (errors, rejected request, page limit).
    """
    got = 0
    failures = 0
    cursor = lo
    for _ in range(max_pages):
        if hi is not None and not still_missing():
            return got
        try:
            page = await fetch(cursor)
        except IpBanned:
            raise
        except InvalidRequest as exc:
            raise RepairFailed(f"REST refused ids from {cursor}: {exc}", got) from exc
        except TransientError as exc:
            failures += 1
            if failures >= attempts:
                raise RepairFailed(f"REST failed {failures} times from id {cursor}: {exc}", got) from exc
            continue
        if not page.trades:
            return got
        rows = page.trades if hi is None else [t for t in page.trades if t.trade_id <= hi]
        if rows:
            got += len(rows)
            await deliver(rows)
        cursor = max(t.trade_id for t in page.trades) + 1
        if page.size < TRADES_LIMIT or (hi is not None and cursor > hi):
            return got
    raise RepairFailed(f"gave up after {max_pages} pages ({got} trades) from id {lo}", got, rest_down=False)


def rows_batch(symbol: str, rows: list[TradeRow], recv_ms: int) -> TradeBatch:
    """REST rows as one batch (the repair path is not the hot path)."""
    return TradeBatch(
        symbol,
        np.array([r.trade_id for r in rows], np.int64),
        np.array([r.event_ms for r in rows], np.int64),
        np.array([r.price for r in rows], np.float64),
        np.array([r.qty for r in rows], np.float64),
        np.array([r.is_buyer_maker for r in rows], np.bool_),
        recv_ms,
    )


class GapRepairer:
    """One repair worker per symbol; ``active`` counts running workers (the watermark holds).

    Args:
        fetch: one REST page of trades of a symbol from an id.
        deliver: hands repaired trades to the source's de-duplicating delivery.
        trackers: the source's per-symbol id trackers (shared, not copied).
        health: the source's health, updated with gap counts and errors.
        spawn: runs a coroutine as a task the source owns (cancelled on close).
        fail: reports an error that must stop the stream (an IP ban, a bug).
    """

    def __init__(
        self,
        *,
        fetch: Callable[[str, int], Awaitable[TradePage]],
        deliver: Callable[[TradeBatch], Awaitable[None]],
        trackers: dict[str, IdTracker],
        health: SourceHealth,
        clock: Clock,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        fail: Callable[[BaseException], Awaitable[None]],
        attempts: int,
        max_pages: int,
        cooldown_s: float,
    ) -> None:
        self._fetch = fetch
        self._deliver = deliver
        self._trackers = trackers
        self._health = health
        self._clock = clock
        self._spawn = spawn
        self._fail = fail
        self._attempts = attempts
        self._max_pages = max_pages
        self._cooldown_ms = int(cooldown_s * 1000)
        self._workers: set[str] = set()
        self._tail: set[str] = set()
        self._rest_down_until = 0
        self.active = 0
        self.closed = False

    def start(self, symbol: str, *, tail: bool = False) -> None:
        """Make sure the symbol's worker runs; ``tail`` also resumes from the last delivered id.

        Counted in ``active`` synchronously: the watermark holds from this instant.
        """
        if tail:
            self._tail.add(symbol)
        if symbol in self._workers:
            return
        self._workers.add(symbol)
        self.active += 1
        self._spawn(self._worker(symbol))

    def count_gap(self, symbol: str, *, found: bool, repaired: bool) -> None:
        if found:
            self._health.gaps += 1
            GAPS.labels(symbol).inc()
        if repaired:
            self._health.gaps_repaired += 1
            GAPS_REPAIRED.labels(symbol).inc()

    async def _worker(self, symbol: str) -> None:
        tracker = self._trackers[symbol]
        try:
            while not self.closed:
                if symbol in self._tail:
                    self._tail.discard(symbol)
                    assert tracker.high is not None
                    if await self._refill(symbol, tracker.high + 1, None):
                        self.count_gap(symbol, found=True, repaired=True)
                    continue
                if not tracker.missing:
                    return
                gaps = list(tracker.missing)
                if self._clock.now_ms() >= self._rest_down_until:
                    # every open gap in one pass: a page of 1000 ids often covers several small ones
                    await self._refill(symbol, gaps[0][0], gaps[-1][1])
                lost = 0
                for a, b in gaps:
                    if tracker.is_missing(a, b):
                        self._give_up(symbol, a, b)
                        lost += 1
                    else:
                        self.count_gap(symbol, found=False, repaired=True)
                if lost:
                    log.warning("binance gaps not repaired", extra={"symbol": symbol, "gaps": lost})
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a 418 ban or a bug: stop the stream loudly
            self._health.last_error = f"gap repair {symbol}: {type(exc).__name__}: {exc}"
            await self._fail(exc)
        finally:
            self._workers.discard(symbol)
            self.active -= 1

    async def _refill(self, symbol: str, lo: int, hi: int | None) -> int:
        tracker = self._trackers[symbol]

        async def deliver(rows: list[TradeRow]) -> None:
            await self._deliver(rows_batch(symbol, rows, self._clock.now_ms()))

        try:
            return await refill(
                lambda cursor: self._fetch(symbol, cursor),
                deliver,
                lo,
                hi,
                still_missing=lambda: hi is not None and tracker.is_missing(lo, hi),
                attempts=self._attempts,
                max_pages=self._max_pages,
            )
        except RepairFailed as exc:
            self._health.last_error = f"gap repair {symbol}: {exc}"
            if exc.rest_down:  # stop holding the watermark on REST for a while
                self._rest_down_until = self._clock.now_ms() + self._cooldown_ms
            return exc.got

    def _give_up(self, symbol: str, lo: int, hi: int) -> None:
        lost = self._trackers[symbol].forget(lo, hi)
        why = "REST unavailable" if self._clock.now_ms() < self._rest_down_until else "not available over REST"
        self._health.detail["gaps_unrepaired"] = str(int(self._health.detail.get("gaps_unrepaired", "0")) + 1)
        self._health.last_error = f"gap {symbol} ids {lo}..{hi}: {lost} trades {why}"
