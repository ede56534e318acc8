"""The live indicator board: closed candles advance it, the open one only gives provisional values."""

from __future__ import annotations

import numpy as np
from tests.factories import T0

from coincast.domain import Candle, Interval
from coincast.stream.board import IndicatorBoard
from coincast.stream.candles import CandleUpdate
from coincast.stream.indicators import LiveIndicators


def candles(n: int, seed: int = 1) -> list[Candle]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    out = []
    for i, c in enumerate(close):
        o = close[i - 1] if i else c
        out.append(Candle("BTCUSDT", Interval.M1, T0 + i * 60_000, o, max(o, c) * 1.001, min(o, c) * 0.999, c,
                          10.0 + i, 1000.0, 5, 4.0, 400.0))
    return out


def test_board_matches_a_direct_fold_and_ignores_replays() -> None:
    cs = candles(120)
    board = IndicatorBoard()
    board.seed(cs[:60])
    board.on_candles([CandleUpdate(c) for c in cs[40:]])  # overlaps the seed: replays must not count twice
    ref = LiveIndicators("BTCUSDT", Interval.M1)
    for c in cs:
        ref.update(c)
    got = board.values("BTCUSDT", Interval.M1)
    assert got["ready"] is True and got["as_of"] == cs[-1].open_ms
    assert got["closed"] == ref.values


def test_provisional_values_leave_the_state_alone() -> None:
    cs = candles(80)
    board = IndicatorBoard()
    board.seed(cs[:-1])
    before = dict(board.values("BTCUSDT", Interval.M1)["closed"])  # type: ignore[arg-type]
    from dataclasses import replace

    live = replace(cs[-1], closed=False)
    board.on_candles([CandleUpdate(live)])
    v1 = board.values("BTCUSDT", Interval.M1)
    v2 = board.values("BTCUSDT", Interval.M1)
    assert v1["closed"] == v2["closed"] == before
    assert v1["provisional"] == v2["provisional"] and v1["provisional"] != before
    board.on_candles([CandleUpdate(cs[-1])])
    after = board.values("BTCUSDT", Interval.M1)
    assert after["provisional"] is None and after["closed"] == v1["provisional"]


def test_unknown_series_is_not_ready() -> None:
    assert IndicatorBoard().values("ETHUSDT", Interval.H1) == {
        "as_of": None, "ready": False, "closed": {}, "provisional": None}
