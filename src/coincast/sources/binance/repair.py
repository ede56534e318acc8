"""Refill a range of trade ids from REST, page by page (``fromId`` pagination, 1000 per page)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from coincast.domain import CoincastError, InvalidRequest, TradeBatch, TransientError
from coincast.sources.binance.rest import TRADES_LIMIT, IpBanned, TradePage
from coincast.sources.binance.wire import TradeRow


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
