"""The CandleStore contract, run on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.factories import T0, make_candles

from coincast.domain import DeadLetter, Interval
from coincast.store.base import CandleStore
from coincast.wiring import open_store


@pytest.fixture(params=["duckdb", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CandleStore]:
    if request.param == "duckdb":
        s = open_store(f"duckdb:///{tmp_path}/c.db")
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
    yield s
    await s.close()


async def test_upsert_twice_stores_once(store: CandleStore) -> None:
    candles = make_candles("BTCUSDT", Interval.M1, n=3)
    await store.upsert(candles)
    await store.upsert(candles)
    got = await store.history("BTCUSDT", Interval.M1, start_ms=0, end_ms=candles[-1].close_ms, limit=10)
    assert got == candles


async def test_upsert_replaces_by_key(store: CandleStore) -> None:
    (c,) = make_candles("ETHUSDT", Interval.H1, n=1)
    await store.upsert([c])
    await store.upsert([replace(c, close=99.0, volume=7.0)])
    assert await store.latest("ETHUSDT", Interval.H1) == replace(c, close=99.0, volume=7.0)


async def test_history_window_limit_and_isolation(store: CandleStore) -> None:
    m1 = make_candles("BTCUSDT", Interval.M1, n=10)
    await store.upsert([*m1, *make_candles("BTCUSDT", Interval.M5, n=2), *make_candles("ETHUSDT", Interval.M1, n=4)])
    got = await store.history("BTCUSDT", Interval.M1, start_ms=m1[2].open_ms, end_ms=m1[7].open_ms, limit=100)
    assert got == m1[2:8]
    newest = await store.history("BTCUSDT", Interval.M1, start_ms=0, end_ms=2**62, limit=3)
    assert newest == m1[-3:]
    assert await store.latest("SOLUSDT", Interval.M1) is None


async def test_dead_letters_round_trip(store: CandleStore) -> None:
    items = [DeadLetter("binance", "malformed_json: Expecting value", "{oops", T0 + i, {"stream": "x"})
             for i in range(3)]
    assert await store.add_dead_letters(items) == 3
    got = await store.dead_letters(limit=2)
    assert [d.recv_ms for d in got] == [T0 + 2, T0 + 1] and got[0].extra == {"stream": "x"}


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
async def test_survives_reopen(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    url = f"duckdb:///{tmp_path}/persist.db" if backend == "duckdb" else request.getfixturevalue("postgres_url")
    s = open_store(url)
    candles = make_candles("BTCUSDT", Interval.D1, n=5)
    await s.upsert(candles)
    await s.close()
    s2 = open_store(url)
    try:
        assert await s2.history("BTCUSDT", Interval.D1, start_ms=0, end_ms=2**62, limit=10) == candles
    finally:
        await s2.close()


def test_unknown_scheme_is_a_config_error() -> None:
    from coincast.domain import ConfigError

    with pytest.raises(ConfigError, match="unknown scheme 'mysql'; use one of duckdb://"):
        open_store("mysql://user:secret@db/x")
    try:
        open_store("mysql://user:secret@db/x")
    except ConfigError as exc:
        assert "secret" not in str(exc)


async def test_fold_state_replaces_only_the_symbols_it_speaks_for(store: CandleStore) -> None:
    """Two ``process`` instances save their own symbols' state: neither erases the other's."""
    from coincast.domain import FoldState

    assert await store.load_fold() is None
    open1 = [replace(c, closed=False) for c in make_candles("BTCUSDT", Interval.M1, n=1)]
    await store.save_fold(FoldState(tuple(open1), {"BTCUSDT": 41}, {"BTCUSDT": T0 + 5}))
    open2 = [replace(c, closed=False) for c in make_candles("ETHUSDT", Interval.H1, n=2)]
    state = FoldState(tuple(open2), {"ETHUSDT": 7}, {"ETHUSDT": T0 + 9, "SOLUSDT": T0 + 3})
    await store.save_fold(state)
    got = await store.load_fold()
    assert got is not None
    assert sorted(got.open_candles, key=lambda c: c.symbol) == open1 + open2
    assert got.max_trade_ids == {"BTCUSDT": 41, "ETHUSDT": 7, "SOLUSDT": -1}
    assert got.watermarks_ms == {"BTCUSDT": T0 + 5, "ETHUSDT": T0 + 9, "SOLUSDT": T0 + 3}
    # a later save of a symbol replaces that symbol's rows (its closed candles leave the open set)
    await store.save_fold(FoldState((), {"BTCUSDT": 50}, {"BTCUSDT": T0 + 60_000}))
    eth = await store.load_fold({"ETHUSDT"})
    btc = await store.load_fold({"BTCUSDT"})
    assert eth is not None and list(eth.open_candles) == open2 and eth.max_trade_ids == {"ETHUSDT": 7}
    assert btc is not None and btc.open_candles == () and btc.max_trade_ids == {"BTCUSDT": 50}
    assert await store.load_fold({"XRPUSDT"}) is None


async def test_concurrent_first_use_opens_once(store: CandleStore) -> None:
    """Several tasks touching a fresh store at once (a process role at start-up): no error."""
    import asyncio

    candles = make_candles("BTCUSDT", Interval.M1, n=2)
    got = await asyncio.gather(store.load_fold(), store.latest("BTCUSDT", Interval.M1), store.upsert(candles),
                               store.load_fold({"ETHUSDT"}))
    assert got[2] == 2 and got[3] is None
