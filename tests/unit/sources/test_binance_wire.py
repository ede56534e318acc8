"""Binance wire parsing: the real fixture payloads, every fault kind, and property tests."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coincast.domain import Candle, Interval, MalformedMessage
from coincast.sources.binance.wire import (
    BookTop,
    ControlReply,
    ServerShutdown,
    TradeRow,
    parse_message,
    parse_rest_agg_trade,
    parse_rest_kline,
    parse_rest_trade,
)

FIX = "binance_fixtures"


def test_real_fixture_payloads(shared_data: Path) -> None:
    ws = shared_data / FIX / "ws"
    agg = parse_message((ws / "aggTrade_combined.json").read_bytes(), 1)
    assert agg == TradeRow("ETHUSDT", 226532, 1675759520847, 1632.46, 0.34305, False, "aggTrade", 1675759520848)
    trade = parse_message((ws / "trade_combined.json").read_text(), 1)
    assert trade == TradeRow("ETHUSDT", 705291099, 1639351062243, 4149.74, 0.4387, True, "trade", 1639351062244)
    book = parse_message((ws / "bookTicker_combined.json").read_text(), 7)
    assert book == BookTop("ETHUSDT", 4507.24, 2.3595, 4507.25, 2.8457, 7)
    with pytest.raises(MalformedMessage, match="unknown event type '24hrTicker'"):
        parse_message((ws / "24hrTicker_docs_example.json").read_text(), 1)


def test_real_rest_payloads(shared_data: Path) -> None:
    rest = shared_data / FIX / "rest"
    rows = json.loads((rest / "klines_btcusdt_1m.json").read_text())
    candles = [parse_rest_kline(r, "BTCUSDT", Interval.M1) for r in rows]
    assert candles[0].open_ms == 1634943780000 and candles[0].trades == 617
    assert candles[0].taker_buy_volume == 12.28492 and candles[0].quote_volume == 1313200.0134041
    aggs = [parse_rest_agg_trade(r, "BTCUSDT") for r in json.loads((rest / "aggTrades_btcusdt.json").read_text())]
    assert aggs[0] == TradeRow("BTCUSDT", 966492862, 1634944096633, 60759.6, 0.00841, False)
    trades = [parse_rest_trade(r, "BTCUSDT") for r in json.loads((rest / "trades_btcusdt.json").read_text())]
    assert trades[0].trade_id == 1111468873 and trades[0].kind == "trade" and trades[0].is_buyer_maker


def kline(**k: object) -> str:
    """A kline event as the spot docs show it (the fixtures have none)."""
    payload = {"t": 1672515780000, "T": 1672515839999, "s": "BNBBTC", "i": "1m", "f": 100, "L": 200,
               "o": "0.0010", "c": "0.0020", "h": "0.0025", "l": "0.0015", "v": "1000", "n": 100, "x": False,
               "q": "1.0000", "V": "500", "Q": "0.500", "B": "123456"}  # fmt: skip
    payload |= k
    return orjson.dumps({"stream": "bnbbtc@kline_1m", "data": {"e": "kline", "E": 1672515782136, "s": "BNBBTC",
                                                                "k": payload}}).decode()  # fmt: skip


def test_kline_event_and_control_frames() -> None:
    c = parse_message(kline(), 1).candle  # the docs' example (its low is above its open: accepted)
    assert isinstance(c, Candle) and c.interval == Interval.M1 and not c.closed and c.high == 0.0025
    with pytest.raises(MalformedMessage, match="inconsistent OHLC"):
        parse_rest_kline([1672515780000, "1", "0.5", "0.9", "1", "1", 1672515839999, "1", 1, "1", "1", "0"],
                         "BTCUSDT", Interval.M1)  # fmt: skip
    with pytest.raises(MalformedMessage, match="unknown interval '2s'"):
        parse_message(kline(i="2s"), 1)
    assert parse_message('{"result": null, "id": 1}', 1) == ControlReply(1, None, "")
    reply = parse_message('{"code": 2, "msg": "Invalid request", "id": 3}', 1)
    assert reply == ControlReply(3, None, "code 2: Invalid request")
    err = parse_message('{"error": {"code": 1, "msg": "Invalid value type"}, "id": 4}', 1)
    assert isinstance(err, ControlReply) and err.error == "code 1: Invalid value type"
    assert isinstance(parse_message('{"e": "serverShutdown", "E": 1700000000000}', 1), ServerShutdown)


def agg(**d: object) -> str:
    data = {"e": "aggTrade", "E": 1675759520848, "s": "ETHUSDT", "a": 226532, "p": "1632.46000000"}
    data |= {"q": "0.34305000", "f": 228423, "l": 228423, "T": 1675759520847, "m": False, "M": True, "st": 1}
    data |= d
    return orjson.dumps({"stream": "ethusdt@aggTrade", "data": data}).decode()


@given(
    a=st.integers(0, 2**62),
    t=st.integers(1_262_304_000_000, 4_102_444_799_999),
    p=st.decimals(min_value="0.00000001", max_value="10000000", places=8),
    q=st.decimals(min_value="0.00000001", max_value="10000000", places=8),
    m=st.booleans(),
)
def test_valid_agg_trades_parse_exactly(a: int, t: int, p: object, q: object, m: bool) -> None:
    row = parse_message(agg(a=a, T=t, p=f"{p:.8f}", q=f"{q:.8f}", m=m), 0)
    assert row == TradeRow("ETHUSDT", a, t, float(f"{p:.8f}"), float(f"{q:.8f}"), m, "aggTrade", 1675759520848)


wrong_values = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=5), st.lists(st.integers(-9, 9), max_size=2),
    st.integers(-(2**63), -1), st.dictionaries(st.text(max_size=2), st.integers(-9, 9), max_size=1),
)  # fmt: skip


@given(field=st.sampled_from(["a", "p", "q", "T", "m", "s", "E"]), value=wrong_values)
def test_wrong_types_or_ranges_are_malformed_never_crash(field: str, value: object) -> None:
    raw = agg(**{field: value})
    try:
        row = parse_message(raw, 0)
    except MalformedMessage as exc:
        assert field in exc.reason or "out of range" in exc.reason
        return
    # the few values that are valid after all: a decimal text as price/qty, a text symbol, a bool side
    assert isinstance(row, TradeRow)
    assert (field in ("p", "q", "s") and isinstance(value, str)) or (field == "m" and isinstance(value, bool))


@given(raw=st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_arbitrary_frames_never_raise_anything_but_malformed(raw: bytes | str) -> None:
    try:
        parse_message(raw, 0)
    except MalformedMessage as exc:
        assert exc.reason


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=4),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(list("eEsapqfTmlkub")), c,
                                                                        max_size=6), max_leaves=12))  # fmt: skip
def test_arbitrary_json_in_the_wrapper_is_handled(data: object) -> None:
    raw = orjson.dumps({"stream": "btcusdt@aggTrade", "data": data})
    with contextlib.suppress(MalformedMessage):
        parse_message(raw, 0)
