"""Gap repair: refill missing trade ids from REST (``fromId`` pagination, 1000 per page).

:func:`refill` fetches one id range; :class:`GapRepairer` runs one worker per symbol that takes
every open gap of the symbol in one pass and resumes from the last delivered id after a
reconnect. While a worker runs, the source's watermark holds.

A resume after a reconnect (the *tail*) ends only when REST has been read up to the present
*after* the new connection delivered its first frame: trades from before that frame come from
REST, later ones from the socket, so nothing falls between a silent new connection and a REST
read that finished too early. While the connection stays silent the worker keeps polling REST.

When REST fails (errors, 429 beyond the client's own retries) the worker retries with backoff,
holding the watermark, for up to ``give_up_s``; then it gives up on what is missing (reported in
``/health``, never chased forever) and stops asking for ``cooldown_s``, so a dead REST endpoint
does not hold the watermark on every later gap. What REST cannot supply (a range past the page
limit) is given up at once, also reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class RepairOptions:
    """How hard gap repair tries (seconds): REST attempts per range, pages per range, how often a
    silent connection's tail is re-read, backoff between failed rounds, when to give up, and how
    long to stop asking after giving up."""

    attempts: int = 2
    max_pages: int = 500
    poll_s: float = 1.0
    retry_s: float = 0.5
    retry_max_s: float = 15.0
    give_up_s: float = 120.0
    cooldown_s: float = 60.0
    ban_wait_max_s: float = 300.0  # an IP ban (HTTP 418) at most this long is waited out, longer stops


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
        settled: called after gaps were given up, so the source releases what it held back.
        flowing: True once the current connection has delivered a frame.
        trackers: the source's per-symbol id trackers (shared, not copied).
        health: the source's health, updated with gap counts and errors.
        spawn: runs a coroutine as a task the source owns (cancelled on close).
        fail: reports an error that must stop the stream (an IP ban, a bug).
        options: attempts, page limit, poll and backoff timing.
    """

    def __init__(
        self,
        *,
        fetch: Callable[[str, int], Awaitable[TradePage]],
        deliver: Callable[[TradeBatch], Awaitable[None]],
        settled: Callable[[str], Awaitable[None]],
        flowing: Callable[[], bool],
        trackers: dict[str, IdTracker],
        health: SourceHealth,
        clock: Clock,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        fail: Callable[[BaseException], Awaitable[None]],
        options: RepairOptions,
    ) -> None:
        self._fetch = fetch
        self._deliver = deliver
        self._settled = settled
        self._flowing = flowing
        self._trackers = trackers
        self._health = health
        self._clock = clock
        self._spawn = spawn
        self._fail = fail
        self._opt = options
        self._workers: set[str] = set()
        self._tail: set[str] = set()
        self._open: dict[str, int] = {}  # gaps found per symbol and not yet filled
        self._rest_down_until = 0
        self._banned_until = 0  # every worker waits out an IP ban (no request may extend it)
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
            if not repaired:
                self._open[symbol] = self._open.get(symbol, 0) + 1
        if repaired:
            self._health.gaps_repaired += 1
            GAPS_REPAIRED.labels(symbol).inc()

    async def _worker(self, symbol: str) -> None:
        tracker = self._trackers[symbol]
        failing_since: int | None = None
        delay = self._opt.retry_s
        try:
            while not self.closed:
                if (ban_s := (self._banned_until - self._clock.now_ms()) / 1000) > 0:
                    await asyncio.sleep(ban_s)
                try:
                    if symbol in self._tail:
                        ok = await self._tail_round(symbol, tracker)
                    elif tracker.missing:
                        ok = await self._gaps_round(symbol, tracker)
                    else:
                        return
                except IpBanned as exc:
                    if exc.retry_after_s > self._opt.ban_wait_max_s:
                        raise
                    # a short ban: wait it out with the watermark held, never ask during it
                    self._health.last_error = f"gap repair {symbol}: {exc}; waiting {exc.retry_after_s:g} s"
                    log.warning("binance REST ban, waiting it out", extra={"symbol": symbol, "s": exc.retry_after_s})
                    until = self._clock.now_ms() + int(exc.retry_after_s * 1000)
                    self._banned_until = max(self._banned_until, until)
                    continue
                if ok:
                    failing_since, delay = None, self._opt.retry_s
                    continue
                now = self._clock.now_ms()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= self._opt.give_up_s * 1000:
                    self._rest_down_until = now + int(self._opt.cooldown_s * 1000)
                    self._tail.discard(symbol)
                    await self._give_up_all(symbol, tracker, "REST unavailable")
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._opt.retry_max_s)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a 418 ban or a bug: stop the stream loudly
            self._health.last_error = f"gap repair {symbol}: {type(exc).__name__}: {exc}"
            await self._fail(exc)
        finally:
            self._workers.discard(symbol)
            self.active -= 1

    async def _tail_round(self, symbol: str, tracker: IdTracker) -> bool:
        """Read REST from the last delivered id to the present; True when the tail is settled or
        REST answered (polling goes on while the connection is silent), False when REST failed."""
        flowing_before = self._flowing()
        assert tracker.high is not None
        got, ok = await self._refill(symbol, tracker.high + 1, None)
        if got:  # trades were missed while away: one gap, filled
            self.count_gap(symbol, found=True, repaired=True)
        self._count_filled(symbol, tracker)
        if not ok:
            return False
        if flowing_before:
            self._tail.discard(symbol)
            return True
        await asyncio.sleep(self._opt.poll_s)  # the connection is still silent: keep reading REST
        return True

    async def _gaps_round(self, symbol: str, tracker: IdTracker) -> bool:
        gaps = list(tracker.missing)
        if self._clock.now_ms() < self._rest_down_until:
            await self._give_up_all(symbol, tracker, "REST unavailable")
            return True
        # every open gap in one pass: a page of 1000 ids often covers several small ones
        _, ok = await self._refill(symbol, gaps[0][0], gaps[-1][1])
        if not ok:
            return False
        lost = 0
        for a, b in gaps:
            if tracker.is_missing(a, b):
                self._give_up(symbol, a, b, "not available over REST")
                lost += 1
        self._count_filled(symbol, tracker)
        if lost:
            log.warning("binance gaps not repaired", extra={"symbol": symbol, "gaps": lost})
            await self._settled(symbol)
        return True

    async def _refill(self, symbol: str, lo: int, hi: int | None) -> tuple[int, bool]:
        """Trades delivered and whether REST answered (a range too long to chase counts as answered)."""
        tracker = self._trackers[symbol]

        async def deliver(rows: list[TradeRow]) -> None:
            await self._deliver(rows_batch(symbol, rows, self._clock.now_ms()))

        try:
            got = await refill(
                lambda cursor: self._fetch(symbol, cursor),
                deliver,
                lo,
                hi,
                still_missing=lambda: hi is not None and tracker.is_missing(lo, hi),
                attempts=self._opt.attempts,
                max_pages=self._opt.max_pages,
            )
        except RepairFailed as exc:
            self._health.last_error = f"gap repair {symbol}: {exc}"
            return exc.got, not exc.rest_down
        return got, True

    def _count_filled(self, symbol: str, tracker: IdTracker) -> None:
        """Once nothing of the symbol is missing, every gap still open was filled."""
        if not tracker.missing:
            for _ in range(self._open.pop(symbol, 0)):
                self.count_gap(symbol, found=False, repaired=True)

    async def _give_up_all(self, symbol: str, tracker: IdTracker, why: str) -> None:
        for a, b in list(tracker.missing):
            self._give_up(symbol, a, b, why)
        await self._settled(symbol)

    def _give_up(self, symbol: str, lo: int, hi: int, why: str) -> None:
        if self._open.get(symbol):
            self._open[symbol] -= 1
        self._forget(symbol, lo, hi, why)

    def _forget(self, symbol: str, lo: int, hi: int, why: str) -> None:
        lost = self._trackers[symbol].forget(lo, hi)
        self._health.detail["gaps_unrepaired"] = str(int(self._health.detail.get("gaps_unrepaired", "0")) + 1)
        self._health.last_error = f"gap {symbol} ids {lo}..{hi}: {lost} trades {why}"
