"""StoreWriter: offsets follow durability (a position is committed only after what covers it is stored)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tests.factories import make_candles

from coincast.domain import Candle, FoldState, Interval, TransientError
from coincast.stream.candles import CandleUpdate
from coincast.stream.writer import StoreWriter


class FlakyStore:
    """Keeps what it is given; fails the next ``fail`` writes like a database that went away."""

    def __init__(self) -> None:
        self.candles: dict[tuple[str, int], Candle] = {}
        self.fold: FoldState | None = None
        self.fail = 0
        self.log: list[str] = []

    def _maybe_fail(self, what: str) -> None:
        if self.fail:
            self.fail -= 1
            self.log.append(f"{what} failed")
            raise TransientError(f"{what}: connection refused")

    async def upsert(self, candles: Sequence[Candle]) -> int:
        self._maybe_fail("upsert")
        for c in candles:
            self.candles[(c.symbol, c.open_ms)] = c
        self.log.append(f"upsert {len(candles)}")
        return len(candles)

    async def save_fold(self, state: FoldState) -> None:
        self._maybe_fail("save_fold")
        self.fold = state
        self.log.append("save_fold")


async def test_position_is_committed_only_after_candles_and_fold_state_are_stored() -> None:
    store = FlakyStore()
    commits: list[dict[str, int]] = []
    position = {"p0": 10}
    state = FoldState((), {"BTCUSDT": 41}, {"BTCUSDT": 5})

    async def commit(pos: dict[str, int]) -> None:
        commits.append(dict(pos))
        store.log.append(f"commit {pos}")

    writer = StoreWriter(store, 1_000, fold_state=lambda: state, position=lambda: dict(position),  # type: ignore[arg-type]
                         commit=commit)
    candles = make_candles("BTCUSDT", Interval.M1, n=3)
    writer.on_candles([CandleUpdate(c) for c in candles])
    assert await writer.flush() == 3
    assert store.log == ["upsert 3", "save_fold", "commit {'p0': 10}"]

    # the database goes away: nothing is committed, the candles stay for the next round
    more = [replace(c, open_ms=c.open_ms + 10 * 60_000) for c in candles]
    writer.on_candles([CandleUpdate(c) for c in more])
    position["p0"] = 20
    store.fail = 1
    try:
        await writer.flush()
    except TransientError:
        pass
    else:
        raise AssertionError("a failed write must raise")
    assert commits == [{"p0": 10}] and writer.failures == 1
    # save_fold failing after the candles were written: still no commit, candles rewritten later
    position["p0"] = 30
    store.log.clear()
    store.fail = 0
    assert await writer.flush() == 3
    assert store.log == ["upsert 3", "save_fold", "commit {'p0': 30}"]
    assert len(store.candles) == 6


async def test_flush_without_commit_records_the_stored_position() -> None:
    store = FlakyStore()
    commits: list[object] = []

    async def commit(pos: object) -> None:
        commits.append(pos)

    writer = StoreWriter(store, 1_000, fold_state=lambda: FoldState((), {}, {}),  # type: ignore[arg-type]
                         position=lambda: {"p1": 7}, commit=commit)
    await writer.flush(commit=False)
    assert writer.stored_position == {"p1": 7} and commits == []
