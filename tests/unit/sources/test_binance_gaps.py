"""Trade-id bookkeeping (gap detection, duplicates) and the REST refill loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coincast.domain import InvalidRequest, TransientError
from coincast.sources.binance.gaps import IdTracker
from coincast.sources.binance.repair import RepairFailed, refill
from coincast.sources.binance.rest import IpBanned, TradePage
from coincast.sources.binance.wire import TradeRow


def feed(tracker: IdTracker, ids: list[int]) -> np.ndarray:
    mask, _ = tracker.accept(np.array(ids, np.int64))
    return mask


def test_contiguous_runs_take_the_fast_path_and_jumps_are_gaps() -> None:
    t = IdTracker()
    assert feed(t, [10, 11, 12]).all()
    mask, gaps = t.accept(np.array([13, 17, 18], np.int64))
    assert mask.all() and gaps == [(14, 16)] and t.missing == [(14, 16)]
    assert not feed(t, [12, 17]).any()  # duplicates
    assert feed(t, [15]).all() and t.missing == [(14, 14), (16, 16)]
    assert t.is_missing(14, 16) and not t.is_missing(17, 20)
    assert t.forget(10, 20) == 2 and t.missing == []


@given(
    ids=st.lists(st.integers(0, 60), min_size=1, max_size=120),
    chunks=st.lists(st.integers(1, 9), min_size=1, max_size=40),
)
def test_every_id_at_or_after_the_first_is_delivered_exactly_once(ids: list[int], chunks: list[int]) -> None:
    t = IdTracker()
    delivered: list[int] = []
    pos = 0
    for size in chunks * (len(ids) // sum(chunks) + 1):
        part = ids[pos : pos + size]
        if not part:
            break
        mask = feed(t, part)
        delivered += [i for i, ok in zip(part, mask, strict=True) if ok]
        pos += size
    first = ids[0]
    assert sorted(delivered) == sorted({i for i in ids if i >= first})
    never = set(range(first, max(ids) + 1)) - set(ids)
    assert {i for lo, hi in t.missing for i in range(lo, hi + 1)} == never


def rows(lo: int, hi: int) -> list[TradeRow]:
    return [TradeRow("BTCUSDT", i, 1_700_000_000_000 + i, 1.0, 1.0, False) for i in range(lo, hi + 1)]


async def test_refill_pages_until_the_range_is_filled() -> None:
    calls: list[int] = []
    got: list[int] = []
    t = IdTracker(high=5000, missing=[(100, 2599)])

    async def fetch(cursor: int) -> TradePage:
        calls.append(cursor)
        return TradePage(rows(cursor, cursor + 999), 1000)

    async def deliver(batch: list[TradeRow]) -> None:
        ids = np.array([r.trade_id for r in batch], np.int64)
        got.extend(int(i) for i in ids[t.accept(ids)[0]])

    n = await refill(fetch, deliver, 100, 2599, still_missing=lambda: t.is_missing(100, 2599))
    assert calls == [100, 1100, 2100] and n == 2500 and got == list(range(100, 2600)) and t.missing == []


async def test_refill_tail_stops_at_a_short_page_and_errors_are_bounded() -> None:
    pages = [TradePage(rows(1, 1000), 1000), TradePage(rows(1001, 1200), 200)]

    async def fetch(cursor: int) -> TradePage:
        return pages.pop(0)

    async def deliver(batch: list[TradeRow]) -> None:
        pass

    assert await refill(fetch, deliver, 1, None, still_missing=lambda: True) == 1200

    async def flaky(cursor: int) -> TradePage:
        raise TransientError("boom")

    with pytest.raises(RepairFailed, match="failed 3 times"):
        await refill(flaky, deliver, 1, 10, still_missing=lambda: True, attempts=3)

    async def refused(cursor: int) -> TradePage:
        raise InvalidRequest("HTTP 400 code -1100")

    with pytest.raises(RepairFailed, match="refused"):
        await refill(refused, deliver, 1, 10, still_missing=lambda: True)

    async def banned(cursor: int) -> TradePage:
        raise IpBanned("HTTP 418", 60)

    with pytest.raises(IpBanned):
        await refill(banned, deliver, 1, 10, still_missing=lambda: True)

    async def endless(cursor: int) -> TradePage:
        return TradePage(rows(cursor, cursor + 999), 1000)

    with pytest.raises(RepairFailed, match="after 2 pages") as info:
        await refill(endless, deliver, 1, None, still_missing=lambda: True, max_pages=2)
    assert info.value.got == 2000
