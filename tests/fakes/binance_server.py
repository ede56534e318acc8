"""A local fake Binance spot exchange: WebSocket streams and REST market data on 127.0.0.1.

It replays recorded trades (``trades_btcusdt.parquet``) with their timestamps moved to now, so a
client sees a live market, and it serves the same trades over REST so gap repair can be checked
against the truth. Message shapes come from the real payloads in ``binance_fixtures/`` (used as
templates: same keys, same order, values replaced). The kinds the fixtures lack are built here
exactly as Binance's spot API documentation shows them, and marked "from the docs" below:
the ``kline`` event, the ``depthUpdate`` event, control replies ``{"result": null, "id": n}``,
WebSocket error frames ``{"code": 2, "msg": "Invalid request: ...", "id": n}``, REST error bodies
``{"code": -1121, "msg": "Invalid symbol."}`` and the 429 / 418 responses with ``Retry-After``.

Faults a test can switch on: ``drop_all()`` (TCP reset, no close frame), ``refuse_next(n)``
(HTTP 503 on the next n handshakes), ``silent`` (accept and subscribe, never send data),
``inject(raw)`` (send any frame), ``rest_faults`` (canned REST responses, first in first out),
``pause()`` / ``resume()`` of the market. The market opens when the first client connects.

Use (the fixtures need the shared data: take paths from the ``shared_data`` fixture)::

    market = Market.from_parquet(shared_data / "trades_btcusdt.parquet", "BTCUSDT", start_ms=now)
    async with FakeBinance(shared_data / "binance_fixtures", [market], live_times=True) as fake:
        env = {"COINCAST_BINANCE_WS_URL": fake.ws_url, "COINCAST_BINANCE_REST_URL": fake.rest_url}
        fake.klines[("BTCUSDT", "1h")] = kline_rows(klines_frame, Interval.H1.ms)  # for backfill
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
import polars as pl
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse

# REST error bodies, from the docs (spot "Error codes": -1003 TOO_MANY_REQUESTS, -1121 INVALID_SYMBOL).
ERR_429 = {
    "code": -1003,
    "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API.",
}
ERR_418 = {
    "code": -1003,
    "msg": "Way too much request weight used; IP banned until 1700000000000. "
    "Please use WebSocket Streams for live updates to avoid bans.",
}
ERR_BAD_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
WEIGHTS = {"/api/v3/klines": 2, "/api/v3/aggTrades": 4, "/api/v3/historicalTrades": 25}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Market:
    """Recorded trades of one symbol; ``cursor`` trades have happened so far."""

    symbol: str
    ids: np.ndarray
    times: np.ndarray
    prices: np.ndarray
    qtys: np.ndarray
    makers: np.ndarray
    cursor: int = 0

    @classmethod
    def from_parquet(cls, path: Path, symbol: str, *, start_ms: int, id_offset: int = 0) -> Market:
        df = pl.read_parquet(path).sort("trade_id")
        times = df["time"].dt.epoch("ms").to_numpy().astype(np.int64)
        return cls(
            symbol,
            df["trade_id"].to_numpy().astype(np.int64) + id_offset,
            times - times[0] + start_ms,
            df["price"].to_numpy(),
            df["qty"].to_numpy(),
            df["is_buyer_maker"].to_numpy(),
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class _Client:
    ws: ServerConnection
    streams: set[str]
    control_times: deque[float] = field(default_factory=deque)


def _fmt(x: float) -> str:
    return f"{x:.8f}"


class FakeBinance:
    """Start with ``async with FakeBinance(fixtures, markets) as fake``; URLs in ``ws_url`` / ``rest_url``."""

    def __init__(
        self,
        fixtures: Path,
        markets: list[Market],
        *,
        trades_per_tick: int = 40,
        tick_s: float = 0.01,
        klines: dict[tuple[str, str], list[list[Any]]] | None = None,
        live_times: bool = False,
    ) -> None:
        """``live_times``: stamp each trade with the wall clock when it is released (a live market)
        instead of the recorded spacing."""
        self._templates = {
            name: orjson.loads((fixtures / "ws" / f"{name}_combined.json").read_bytes())
            for name in ("aggTrade", "trade", "bookTicker")
        }
        self.markets = {m.symbol: m for m in markets}
        self.klines = klines or {}
        self.trades_per_tick = trades_per_tick
        self.tick_s = tick_s
        self.live_times = live_times
        self.silent = False
        self.kline_every_s = 1.0  # Binance pushes kline updates every second or two, trades or not
        self.paused = False
        self.refuse = 0
        self.handshakes: list[float] = []  # loop time of every connection attempt
        self.refused: list[float] = []
        self.clients: list[_Client] = []
        self.connections_total = 0
        self.rate_violations = 0
        self.rest_faults: deque[tuple[int, dict[str, str], Any]] = deque()
        self.rest_log: list[tuple[str, dict[str, str]]] = []
        self.used_weight = 0
        self.ws_url = ""
        self.rest_url = ""
        self._ws_server: Server | None = None
        self._http: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeBinance:
        self._ws_server = await serve(self._handler, "127.0.0.1", 0, process_request=self._on_handshake)
        port = next(iter(self._ws_server.sockets)).getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}"
        app = Starlette(routes=[Route("/{path:path}", self._rest, methods=["GET"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off", ws="none")
        self._http = uvicorn.Server(config)
        self._tasks.append(asyncio.create_task(self._http.serve()))
        async with asyncio.timeout(10):
            while not self._http.started:
                await asyncio.sleep(0.01)
        http_port = self._http.servers[0].sockets[0].getsockname()[1]
        self.rest_url = f"http://127.0.0.1:{http_port}"
        self._tasks.append(asyncio.create_task(self._publish()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        if self._http is not None:
            self._http.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()

    # --- faults ---------------------------------------------------------------------------------

    def refuse_next(self, n: int) -> None:
        self.refuse = n

    def drop_all(self) -> None:
        """Reset every connection without a close frame, as a network failure would."""
        for c in list(self.clients):
            c.ws.transport.abort()

    async def inject(self, raw: str | bytes) -> None:
        for c in list(self.clients):
            with contextlib.suppress(ConnectionClosed):
                await c.ws.send(raw)  # bytes go as a binary frame

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    @property
    def done(self) -> bool:
        return all(m.cursor >= len(m) for m in self.markets.values())

    def released(self, symbol: str) -> np.ndarray:
        m = self.markets[symbol]
        return m.ids[: m.cursor]

    # --- WebSocket ------------------------------------------------------------------------------

    def _on_handshake(self, ws: ServerConnection, request: WsRequest) -> WsResponse | None:
        t = asyncio.get_running_loop().time()
        self.handshakes.append(t)
        if self.refuse > 0:
            self.refuse -= 1
            self.refused.append(t)
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refused by test\n")
        if not request.path.startswith("/stream"):
            return ws.respond(HTTPStatus.NOT_FOUND, "use /stream?streams=...\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        streams = {s for s in query.get("streams", [""])[0].split("/") if s}
        client = _Client(ws, streams)
        self.clients.append(client)
        self.connections_total += 1
        try:
            async for raw in ws:
                await self._control(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self.clients.remove(client)

    async def _control(self, client: _Client, raw: str | bytes) -> None:
        loop_t = asyncio.get_running_loop().time()
        client.control_times.append(loop_t)
        while client.control_times and client.control_times[0] < loop_t - 1.0:
            client.control_times.popleft()
        if len(client.control_times) > 5:  # Binance: more than 5 messages a second disconnects
            self.rate_violations += 1
            await client.ws.close(1008, "Too many requests")
            return
        try:
            msg = orjson.loads(raw)
            method, req_id = msg["method"], msg["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            # from the docs ("Error Messages"): code 3 is invalid JSON, code 2 an invalid request
            await client.ws.send(orjson.dumps({"code": 3, "msg": "Invalid JSON", "id": None}).decode())
            return
        params = msg.get("params") or []
        if method == "SUBSCRIBE":
            client.streams.update(params)
            reply: dict[str, Any] = {"result": None, "id": req_id}  # from the docs
        elif method == "UNSUBSCRIBE":
            client.streams.difference_update(params)
            reply = {"result": None, "id": req_id}
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(client.streams), "id": req_id}
        else:
            reply = {"code": 2, "msg": f"Invalid request: unknown method {method}", "id": req_id}
        await client.ws.send(orjson.dumps(reply).decode())

    async def _publish(self) -> None:
        loop = asyncio.get_running_loop()
        next_kline = loop.time() + self.kline_every_s
        while True:
            await asyncio.sleep(self.tick_s)
            if self.connections_total == 0:  # the market opens with the first client
                continue
            if loop.time() >= next_kline and not self.silent:
                next_kline = loop.time() + self.kline_every_s
                await self._send_kline_updates()
            if self.paused:
                continue
            for m in self.markets.values():
                lo = m.cursor
                hi = min(len(m), lo + self.trades_per_tick)
                if hi == lo:
                    continue
                if self.live_times:
                    m.times[lo:hi] = now_ms()
                m.cursor = hi
                if self.silent:
                    continue
                await self._send_market(m, lo, hi)

    async def _send_market(self, m: Market, lo: int, hi: int) -> None:
        low = m.symbol.lower()
        frames: dict[str, list[str]] = {
            f"{low}@aggTrade": [self._agg(m, k) for k in range(lo, hi)],
            f"{low}@trade": [self._trade(m, k) for k in range(lo, hi)],
            f"{low}@kline_1m": self._klines(m, lo, hi),
            f"{low}@bookTicker": [self._book(m, hi - 1)],
        }
        for c in list(self.clients):
            for stream, msgs in frames.items():
                if stream not in c.streams:
                    continue
                for raw in msgs:
                    try:
                        await c.ws.send(raw)
                    except ConnectionClosed:
                        break

    async def _send_kline_updates(self) -> None:
        """The current minute's ``kline_1m`` of every market, stamped with the exchange's clock: the
        wall clock, or the last trade's time when recorded times run ahead of it (from the docs:
        the stream pushes updates whether or not anything traded)."""
        released = [int(m.times[m.cursor - 1]) + 1 for m in self.markets.values() if m.cursor]
        t = max([now_ms(), *released])
        minute = t // 60_000 * 60_000
        for m in self.markets.values():
            raw = quiet_kline_event(m, minute, t)
            for c in list(self.clients):
                if f"{m.symbol.lower()}@kline_1m" in c.streams:
                    with contextlib.suppress(ConnectionClosed):
                        await c.ws.send(raw)

    def _agg(self, m: Market, k: int) -> str:
        msg = copy.deepcopy(self._templates["aggTrade"])
        t = int(m.times[k])
        msg["stream"] = f"{m.symbol.lower()}@aggTrade"
        msg["data"].update(
            E=t + 1, s=m.symbol, a=int(m.ids[k]), p=_fmt(m.prices[k]), q=_fmt(m.qtys[k]),
            f=int(m.ids[k]), l=int(m.ids[k]), T=t, m=bool(m.makers[k]),
        )  # fmt: skip
        return orjson.dumps(msg).decode()

    def _trade(self, m: Market, k: int) -> str:
        msg = copy.deepcopy(self._templates["trade"])
        t = int(m.times[k])
        msg["stream"] = f"{m.symbol.lower()}@trade"
        msg["data"].update(
            E=t + 1, s=m.symbol, t=int(m.ids[k]), p=_fmt(m.prices[k]), q=_fmt(m.qtys[k]),
            T=t, m=bool(m.makers[k]),
        )  # fmt: skip
        return orjson.dumps(msg).decode()

    def _book(self, m: Market, k: int) -> str:
        msg = copy.deepcopy(self._templates["bookTicker"])
        p = float(m.prices[k])
        msg["stream"] = f"{m.symbol.lower()}@bookTicker"
        msg["data"].update(u=int(m.ids[k]), s=m.symbol, b=_fmt(p - 0.01), a=_fmt(p + 0.01))
        msg["data"].update(T=int(m.times[k]), E=int(m.times[k]) + 2)
        return orjson.dumps(msg).decode()

    def _klines(self, m: Market, lo: int, hi: int) -> list[str]:
        """``kline_1m`` events for every minute touched by trades ``lo..hi`` (from the docs).

        A minute is reported closed (``x: true``) once a later minute has started.
        """
        out = []
        minutes = m.times // 60_000
        last_minute = int(minutes[hi - 1])
        touched = {int(x) for x in minutes[lo:hi]}
        if lo > 0 and int(minutes[lo - 1]) < last_minute:
            touched.add(int(minutes[lo - 1]))  # it just ended: report it closed, once
        for minute in sorted(touched):
            sel = np.nonzero(minutes[:hi] == minute)[0]
            out.append(kline_event(m, sel, minute * 60_000, minute < last_minute))
        return out

    # --- REST -----------------------------------------------------------------------------------

    async def _rest(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        params = dict(request.query_params)
        self.rest_log.append((path, params))
        self.used_weight += WEIGHTS.get(path, 1)
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
        if self.rest_faults:
            status, extra, body = self.rest_faults.popleft()
            return Response(orjson.dumps(body), status, {**headers, **extra}, media_type="application/json")
        body, status = self._answer(path, params)
        return Response(orjson.dumps(body), status, headers, media_type="application/json")

    def _answer(self, path: str, params: dict[str, str]) -> tuple[Any, int]:
        if path == "/api/v3/ping":
            return {}, 200
        if path == "/api/v3/time":
            return {"serverTime": now_ms()}, 200
        if path in ("/api/v3/aggTrades", "/api/v3/historicalTrades"):
            m = self.markets.get(params.get("symbol", ""))
            if m is None:
                return ERR_BAD_SYMBOL, 400
            return self._trades(m, params, agg=path.endswith("aggTrades")), 200
        if path == "/api/v3/klines":
            rows = self.klines.get((params.get("symbol", ""), params.get("interval", "")))
            if rows is None:
                return ERR_BAD_SYMBOL, 400
            return _klines_page(rows, params), 200
        return {"code": -1000, "msg": f"unknown path {path}"}, 404

    def _trades(self, m: Market, params: dict[str, str], *, agg: bool) -> list[dict[str, Any]]:
        limit = min(int(params.get("limit", 500)), 1000)
        ids, times = m.ids[: m.cursor], m.times[: m.cursor]
        if "fromId" in params:
            sel = np.nonzero(ids >= int(params["fromId"]))[0]
        elif "startTime" not in params and "endTime" not in params:  # the most recent trades
            sel = np.arange(max(0, m.cursor - limit), m.cursor)
        else:
            start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
            sel = np.nonzero((times >= start) & (times <= end))[0]
        out = []
        for k in sel[:limit]:
            p, q, t, i, mk = (
                _fmt(m.prices[k]),
                _fmt(m.qtys[k]),
                int(m.times[k]),
                int(m.ids[k]),
                bool(m.makers[k]),
            )
            if agg:
                out.append({"a": i, "p": p, "q": q, "f": i, "l": i, "T": t, "m": mk, "M": True})
            else:
                quote = _fmt(float(m.prices[k]) * float(m.qtys[k]))
                row = {"id": i, "price": p, "qty": q, "quoteQty": quote, "time": t, "isBuyerMaker": mk}
                out.append({**row, "isBestMatch": True})
        return out


def kline_event(m: Market, sel: np.ndarray, open_ms: int, closed: bool) -> str:
    """A ``<symbol>@kline_1m`` combined frame, field for field as the spot docs show it."""
    p, q = m.prices[sel], m.qtys[sel]
    taker = ~m.makers[sel]
    data = {
        "e": "kline", "E": int(m.times[sel[-1]]) + 1, "s": m.symbol,
        "k": {
            "t": open_ms, "T": open_ms + 59_999, "s": m.symbol, "i": "1m",
            "f": int(m.ids[sel[0]]), "L": int(m.ids[sel[-1]]),
            "o": _fmt(p[0]), "c": _fmt(p[-1]), "h": _fmt(p.max()), "l": _fmt(p.min()),
            "v": _fmt(q.sum()), "n": int(sel.size), "x": closed, "q": _fmt(float((p * q).sum())),
            "V": _fmt(q[taker].sum()), "Q": _fmt(float((p[taker] * q[taker]).sum())), "B": "0",
        },
    }  # fmt: skip
    return orjson.dumps({"stream": f"{m.symbol.lower()}@kline_1m", "data": data}).decode()


def quiet_kline_event(m: Market, minute_ms: int, event_ms: int) -> str:
    """The kline of the minute starting at ``minute_ms`` as pushed at ``event_ms``: its trades so
    far, or a zero-volume kline at the last price (``f``/``L`` -1) when none traded yet."""
    sel = np.nonzero((m.times[: m.cursor] // 60_000) * 60_000 == minute_ms)[0]
    if sel.size:
        raw = orjson.loads(kline_event(m, sel, minute_ms, False))
    else:
        last = _fmt(m.prices[m.cursor - 1]) if m.cursor else _fmt(m.prices[0])
        raw = {"stream": f"{m.symbol.lower()}@kline_1m", "data": {
            "e": "kline", "E": 0, "s": m.symbol,
            "k": {"t": minute_ms, "T": minute_ms + 59_999, "s": m.symbol, "i": "1m", "f": -1, "L": -1,
                  "o": last, "c": last, "h": last, "l": last, "v": _fmt(0), "n": 0, "x": False, "q": _fmt(0),
                  "V": _fmt(0), "Q": _fmt(0), "B": "0"},
        }}  # fmt: skip
    raw["data"]["E"] = event_ms
    return orjson.dumps(raw).decode()


def kline_rows(frame: pl.DataFrame, interval_ms: int) -> list[list[Any]]:
    """``/api/v3/klines`` rows (12 fields, prices as strings) from a klines frame."""
    rows = []
    for r in frame.iter_rows(named=True):
        t = int(r["open_time"].timestamp() * 1000)
        rows.append(
            [
                t, _fmt(r["open"]), _fmt(r["high"]), _fmt(r["low"]), _fmt(r["close"]), _fmt(r["volume"]),
                t + interval_ms - 1, _fmt(r["volume"] * r["close"]), 100,
                _fmt(r["volume"] / 2), _fmt(r["volume"] * r["close"] / 2), "0",
            ]
        )  # fmt: skip
    return rows


def _klines_page(rows: list[list[Any]], params: dict[str, str]) -> list[list[Any]]:
    limit = min(int(params.get("limit", 500)), 1000)
    start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
    return [r for r in rows if start <= r[0] <= end][:limit]
