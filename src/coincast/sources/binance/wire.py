"""Binance spot wire formats: pydantic models with Binance's exact field names.

This is the only module that knows Binance's JSON. Each model converts once into coincast values
(trade columns, :class:`~coincast.domain.Candle`, :class:`BookTop`). Field meanings follow the
spot API documentation (``web-socket-streams``, ``rest-api``):

* prices and quantities are decimal *strings*; ids and times are integers (epoch ms);
* a combined stream wraps each event as ``{"stream": "<name>", "data": <payload>}``;
* control responses are ``{"result": null, "id": 1}``; errors are ``{"code": 2, "msg": ..., "id": 1}``
  (older form) or ``{"error": {"code": 2, "msg": ...}, "id": 1}``.

Anything that does not fit raises :class:`~coincast.domain.MalformedMessage` with a reason the
caller puts in the dead-letter store. Values are checked for range as well as type: a price and
a trade quantity must be positive and finite, volumes non-negative, a time within 2010..2100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from annotated_types import Len
from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError

from coincast.domain import Candle, Interval, InvalidInterval, MalformedMessage

MIN_TIME_MS = 1_262_304_000_000  # 2010-01-01: before any crypto exchange we read
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01


def _decimal(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a decimal string: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"out of range: {text!r} (must be finite and >= 0)")
    return value


def _positive(text: str) -> str:
    if _decimal(text) <= 0:
        raise ValueError(f"out of range: {text!r} (price must be > 0)")
    return text


def _positive_qty(text: str) -> str:
    if _decimal(text) <= 0:
        raise ValueError(f"out of range: {text!r} (quantity must be > 0)")
    return text


def _non_negative(text: str) -> str:
    _decimal(text)
    return text


def _time(ms: int) -> int:
    if not MIN_TIME_MS <= ms < MAX_TIME_MS:
        raise ValueError(f"time out of range: {ms} (epoch ms between 2010 and 2100)")
    return ms


Price = Annotated[str, AfterValidator(_positive)]
Qty = Annotated[str, AfterValidator(_non_negative)]
TradeQty = Annotated[str, AfterValidator(_positive_qty)]  # a trade of nothing is not a trade
TimeMs = Annotated[StrictInt, AfterValidator(_time)]
Level = Annotated[list[Qty], Len(2, 2)]
Id = Annotated[StrictInt, AfterValidator(lambda v: v if v >= 0 else _raise(f"negative id {v}"))]


def _raise(msg: str) -> Any:
    raise ValueError(msg)


class _Wire(BaseModel):
    # Binance adds fields over time (``st`` appeared on aggTrade): ignore what we do not use.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class AggTradeMsg(_Wire):
    """``<symbol>@aggTrade`` event; ``a`` is the aggregate id, contiguous per symbol."""

    e: Literal["aggTrade"]
    E: TimeMs
    s: str
    a: Id
    p: Price
    q: TradeQty
    f: Id
    l: Id  # noqa: E741 (Binance's name)
    T: TimeMs
    m: StrictBool


class TradeMsg(_Wire):
    """``<symbol>@trade`` event; ``t`` is the trade id, contiguous per symbol."""

    e: Literal["trade"]
    E: TimeMs
    s: str
    t: Id
    p: Price
    q: TradeQty
    T: TimeMs
    m: StrictBool


class KlinePayload(_Wire):
    t: TimeMs
    T: TimeMs
    s: str
    i: str
    f: StrictInt
    L: StrictInt
    o: Price
    c: Price
    h: Price
    l: Price  # noqa: E741 (Binance's name)
    v: Qty
    n: Annotated[StrictInt, AfterValidator(lambda v: v if v >= 0 else _raise(f"negative count {v}"))]
    x: StrictBool
    q: Qty
    V: Qty
    Q: Qty


class KlineMsg(_Wire):
    """``<symbol>@kline_<interval>`` event (used as a cross-check, not as the candle source)."""

    e: Literal["kline"]
    E: TimeMs
    s: str
    k: KlinePayload

    def to_candle(self, *, check_ohlc: bool = True) -> Candle:
        """The candle as Binance reports it; ``closed`` is Binance's ``x``.

        ``check_ohlc`` False accepts low/high that do not bracket open/close: the stream's klines
        are only a cross-check, and Binance's own documented example event has low > open.

        Raises:
            MalformedMessage: for an interval coincast does not know or (when checked) inconsistent OHLC.
        """
        k = self.k
        try:
            interval = Interval.parse(k.i)
        except InvalidInterval as exc:
            raise MalformedMessage(f"kline: {exc}") from None
        candle = Candle(
            symbol=self.s,
            interval=interval,
            open_ms=k.t,
            open=float(k.o),
            high=float(k.h),
            low=float(k.l),
            close=float(k.c),
            volume=float(k.v),
            quote_volume=float(k.q),
            trades=k.n,
            taker_buy_volume=float(k.V),
            taker_buy_quote_volume=float(k.Q),
            closed=k.x,
        )
        bad = candle.high < max(candle.open, candle.close) or candle.low > min(candle.open, candle.close)
        if check_ohlc and bad:
            raise MalformedMessage(f"kline: inconsistent OHLC o={k.o} h={k.h} l={k.l} c={k.c}")
        return candle


class BookTickerMsg(_Wire):
    """``<symbol>@bookTicker`` (no ``e`` field; ``u`` is the order-book update id)."""

    u: StrictInt
    s: str
    b: Price
    B: Qty
    a: Price
    A: Qty


class DepthUpdateMsg(_Wire):
    """``<symbol>@depth`` diff event; parsed for validation and counting only."""

    e: Literal["depthUpdate"]
    E: TimeMs
    s: str
    U: StrictInt
    u: StrictInt
    b: list[Level]  # [[price, qty], ...]
    a: list[Level]


class RestAggTrade(_Wire):
    """One row of ``GET /api/v3/aggTrades``."""

    a: Id
    p: Price
    q: TradeQty
    f: Id
    l: Id  # noqa: E741 (Binance's name)
    T: TimeMs
    m: StrictBool


class RestTrade(_Wire):
    """One row of ``GET /api/v3/historicalTrades`` or ``/api/v3/trades``."""

    id: Id
    price: Price
    qty: TradeQty
    time: TimeMs
    isBuyerMaker: StrictBool


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid and ask of one symbol at ``recv_ms``."""

    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    recv_ms: int


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One parsed trade on its way into a column buffer.

    ``kind`` is ``aggTrade`` (``trade_id`` is the aggregate id) or ``trade`` (the trade id): the two
    id spaces differ, so a source counts one kind only.
    """

    symbol: str
    trade_id: int
    event_ms: int
    price: float
    qty: float
    is_buyer_maker: bool
    kind: str = "aggTrade"
    sent_ms: int = 0  # the exchange's event time ``E`` of the frame (0 for REST rows)


@dataclass(frozen=True, slots=True)
class KlineEvent:
    """A kline frame: the candle as Binance reports it and the exchange's event time ``E``.

    ``event_ms`` is what lets a quiet symbol's candles close on exchange time: Binance pushes
    kline updates every second or two whether or not anything traded.
    """

    candle: Candle
    event_ms: int


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS; ``error`` empty on success."""

    id: int | str | None
    result: Any
    error: str


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """``serverShutdown`` event: the server is about to close this connection."""


Parsed = TradeRow | KlineEvent | BookTop | ControlReply | ServerShutdown | DepthUpdateMsg


def _validate(model: type[_Wire], data: object, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "payload"
        raise MalformedMessage(f"{what}: field {loc}: {first['msg']}") from None


def parse_rest_kline(row: object, symbol: str, interval: Interval) -> Candle:
    """One row of ``GET /api/v3/klines``: a 12-element array.

    ``[open_time, open, high, low, close, volume, close_time, quote_volume, trades,
    taker_buy_base, taker_buy_quote, ignore]``; prices are strings, times ms integers.

    Raises:
        MalformedMessage: wrong length, types or ranges.
    """
    if not isinstance(row, list) or len(row) < 11:
        raise MalformedMessage(f"kline row: expected an array of 12 fields, got {str(row)[:80]}")
    data = {
        "t": row[0], "o": row[1], "h": row[2], "l": row[3], "c": row[4], "v": row[5], "T": row[6],
        "q": row[7], "n": row[8], "V": row[9], "Q": row[10], "s": symbol, "i": interval.value,
        "f": -1, "L": -1, "x": True,
    }  # fmt: skip
    payload = _validate(KlinePayload, data, "kline row")
    return KlineMsg(e="kline", E=payload.T, s=symbol, k=payload).to_candle()


def parse_rest_agg_trade(row: object, symbol: str) -> TradeRow:
    """One row of ``GET /api/v3/aggTrades``. Raises MalformedMessage."""
    m: RestAggTrade = _validate(RestAggTrade, row, "aggTrades row")
    return TradeRow(symbol, m.a, m.T, float(m.p), float(m.q), m.m)


def parse_rest_trade(row: object, symbol: str) -> TradeRow:
    """One row of ``GET /api/v3/historicalTrades``. Raises MalformedMessage."""
    m: RestTrade = _validate(RestTrade, row, "trades row")
    return TradeRow(symbol, m.id, m.time, float(m.price), float(m.qty), m.isBuyerMaker, "trade")


def _control(msg: dict[str, Any]) -> ControlReply:
    err = msg.get("error")
    if isinstance(err, dict):
        return ControlReply(msg.get("id"), None, f"code {err.get('code')}: {err.get('msg')}")
    if "code" in msg:
        return ControlReply(msg.get("id"), None, f"code {msg.get('code')}: {msg.get('msg')}")
    return ControlReply(msg.get("id"), msg.get("result"), "")


def _kind(stream: str | None, data: dict[str, Any]) -> str:
    event = data.get("e")
    if isinstance(event, str):
        return event
    if stream and "@" in stream:
        return stream.split("@", 1)[1].split("_", 1)[0].split("@", 1)[0]
    if {"u", "b", "a", "B", "A"} <= data.keys():
        return "bookTicker"
    return ""


def parse_message(raw: str | bytes, recv_ms: int) -> Parsed:
    """Parse one WebSocket frame (combined-stream wrapper or raw event or control reply).

    Raises:
        MalformedMessage: invalid JSON, unknown event type, wrong types or out-of-range values.
    """
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"invalid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(msg).__name__}")
    if "id" in msg and ("result" in msg or "error" in msg or "code" in msg):
        return _control(msg)
    stream = msg.get("stream")
    data = msg.get("data", msg) if "stream" in msg else msg
    if stream is not None and not isinstance(stream, str):
        raise MalformedMessage("combined wrapper: field stream: must be a string")
    if not isinstance(data, dict):
        raise MalformedMessage("combined wrapper: field data: must be an object")
    kind = _kind(stream, data)
    if kind == "aggTrade":
        a: AggTradeMsg = _validate(AggTradeMsg, data, "aggTrade")
        return TradeRow(a.s, a.a, a.T, float(a.p), float(a.q), a.m, "aggTrade", a.E)
    if kind == "trade":
        t: TradeMsg = _validate(TradeMsg, data, "trade")
        return TradeRow(t.s, t.t, t.T, float(t.p), float(t.q), t.m, "trade", t.E)
    if kind == "kline":
        k: KlineMsg = _validate(KlineMsg, data, "kline")
        return KlineEvent(k.to_candle(check_ohlc=False), k.E)
    if kind == "bookTicker":
        b: BookTickerMsg = _validate(BookTickerMsg, data, "bookTicker")
        return BookTop(b.s, float(b.b), float(b.B), float(b.a), float(b.A), recv_ms)
    if kind in ("depthUpdate", "depth"):
        return _validate(DepthUpdateMsg, data, "depthUpdate")  # type: ignore[no-any-return]
    if kind == "serverShutdown":
        return ServerShutdown()
    raise MalformedMessage(f"unknown event type {kind or '(none)'!r} on stream {stream!r}")


class Ticker24hMsg(_Wire):
    """``GET /api/v3/ticker/24hr?symbol=…`` (REST): the rolling 24-hour statistics of one pair."""

    symbol: str
    lastPrice: str  # Binance's field names
    priceChangePercent: str
    highPrice: str
    lowPrice: str
    quoteVolume: str
    closeTime: StrictInt
