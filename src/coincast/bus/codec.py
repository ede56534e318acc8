"""Wire encoding of bus payloads for brokers (Kafka): compact, versioned, one message per batch.

A trade batch travels as a small JSON header and its numpy columns as raw little-endian bytes
(no per-trade encoding); a candle list as JSON. The first byte is the payload kind and version.
"""

from __future__ import annotations

import struct

import numpy as np
import orjson

from coincast.domain import Candle, Interval, MalformedMessage, TradeBatch

_TRADES_V1 = b"T"
_CANDLES_V1 = b"C"
_COLS = (("trade_id", "<i8"), ("event_ms", "<i8"), ("price", "<f8"), ("qty", "<f8"), ("is_buyer_maker", "|b1"))


def encode(payload: object) -> bytes:
    """Bytes for a :class:`TradeBatch` or a list of :class:`Candle`.

    Raises:
        TypeError: any other payload.
    """
    if isinstance(payload, TradeBatch):
        head = orjson.dumps({"symbol": payload.symbol, "n": len(payload), "recv_ms": payload.recv_ms,
                             "wm": payload.watermark_ms})
        body = b"".join(np.ascontiguousarray(getattr(payload, name), dtype=dt).tobytes() for name, dt in _COLS)
        return _TRADES_V1 + struct.pack("<I", len(head)) + head + body
    if isinstance(payload, list) and all(isinstance(c, Candle) for c in payload):
        return _CANDLES_V1 + orjson.dumps([c.as_dict() for c in payload])
    raise TypeError(f"cannot encode {type(payload).__name__} for the bus")


def decode(data: bytes) -> TradeBatch | list[Candle]:
    """The payload encoded by :func:`encode`.

    Raises:
        MalformedMessage: bytes that are not a payload of a known kind and version.
    """
    kind = data[:1]
    try:
        if kind == _TRADES_V1:
            (hlen,) = struct.unpack_from("<I", data, 1)
            head = orjson.loads(data[5:5 + hlen])
            n, pos, cols = int(head["n"]), 5 + hlen, {}
            for name, dt in _COLS:
                size = n * np.dtype(dt).itemsize
                if pos + size > len(data):
                    raise ValueError("truncated column data")
                cols[name] = np.frombuffer(data, dtype=dt, count=n, offset=pos).astype(dt[1:], copy=True)
                pos += size
            return TradeBatch(str(head["symbol"]), cols["trade_id"], cols["event_ms"], cols["price"], cols["qty"],
                              cols["is_buyer_maker"], int(head.get("recv_ms", 0)), int(head.get("wm", 0)))
        if kind == _CANDLES_V1:
            return [
                Candle(d["symbol"], Interval(d["interval"]), int(d["open_time"]), float(d["open"]), float(d["high"]),
                       float(d["low"]), float(d["close"]), float(d["volume"]), float(d["quote_volume"]),
                       int(d["trades"]), float(d["taker_buy_volume"]), float(d["taker_buy_quote_volume"]),
                       bool(d["closed"]))
                for d in orjson.loads(data[1:])
            ]
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise MalformedMessage(f"bad bus payload of kind {kind!r}: {exc}", data[:200]) from exc
    raise MalformedMessage(f"unknown bus payload kind {kind!r}", data[:200])
