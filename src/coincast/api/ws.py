"""WebSocket fan-out: live candles and tickers to many browser clients.

The hub is a candle sink. It never sends per trade: in-progress candles are coalesced per
(symbol, interval) and sent at most every ``flush_ms``; closed candles are always sent, in order.
Each message is encoded once and queued to every subscribed client; a client too slow to keep
up loses messages (counted) rather than slowing the pipeline.

Limits (``ApiSettings``): clients at once (more are closed with 1013 and an error message), candle
subscriptions per client, and the size of a client message (the server also refuses larger frames
with close code 1009). A binary frame is answered with an error message; the connection stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import WebSocket, WebSocketDisconnect
from prometheus_client import Counter, Gauge

from coincast.domain import Candle, Interval, InvalidRequest, require_symbol
from coincast.settings import ApiSettings
from coincast.stream.candles import CandleUpdate

log = logging.getLogger(__name__)

WS_CLIENTS = Gauge("coincast_ws_clients", "Connected WebSocket clients")
WS_SENT = Counter("coincast_ws_messages_sent_total", "WebSocket messages queued to clients")
WS_DROPPED = Counter("coincast_ws_messages_dropped_total", "Messages dropped for slow clients")

CandleKey = tuple[str, Interval]


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(512))
    candles: set[CandleKey] = field(default_factory=set)
    tickers: bool = False

    def offer(self, msg: bytes) -> None:
        try:
            self.queue.put_nowait(msg)
            WS_SENT.inc()
        except asyncio.QueueFull:
            WS_DROPPED.inc()


class Hub:
    """Coalesces updates and fans them out.

    Args:
        symbols: the configured symbols (subscriptions are validated against them).
        intervals: the configured intervals.
        tickers: returns the current tickers as JSON-ready dicts.
        flush_ms: how often pending updates go out.
        api: the limits (``ws_max_clients``, ``ws_max_subscriptions``, ``ws_max_frame_bytes``).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        intervals: Sequence[Interval],
        tickers: Callable[[], list[dict[str, object]]],
        flush_ms: int = 250,
        api: ApiSettings | None = None,
    ) -> None:
        self._api = api or ApiSettings()
        self._symbols = tuple(symbols)
        self._intervals = tuple(intervals)
        self._tickers = tickers
        self._flush_s = flush_ms / 1000
        self._clients: set[_Client] = set()
        self._pending: dict[CandleKey, Candle] = {}
        self._closed: list[Candle] = []
        self._task: asyncio.Task[None] | None = None

    # -- sink side --------------------------------------------------------------------------------

    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        if not self._clients:
            return
        for u in updates:
            c = u.candle
            if c.closed:
                self._closed.append(c)
            else:
                self._pending[(c.symbol, c.interval)] = c

    def broadcast(self, channel: str, message: dict[str, object]) -> None:
        """Send a message to every client (e.g. alerts, training progress)."""
        data = orjson.dumps({"type": channel, **message})
        for client in self._clients:
            client.offer(data)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ws-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1001)

    async def _loop(self) -> None:
        ticks = 0
        every = max(1, round(1.0 / self._flush_s))
        while True:
            await asyncio.sleep(self._flush_s)
            self._flush_candles()
            ticks += 1
            if ticks % every == 0:
                self._send_tickers()

    def _flush_candles(self) -> None:
        closed, self._closed = self._closed, []
        pending, self._pending = self._pending, {}
        for c in closed:  # an in-progress copy of a candle that has since closed is stale
            stale = pending.get((c.symbol, c.interval))
            if stale is not None and stale.open_ms <= c.open_ms:
                del pending[(c.symbol, c.interval)]
        messages: list[tuple[CandleKey, bytes]] = []
        for c in [*closed, *sorted(pending.values(), key=lambda c: c.open_ms)]:
            msg = {"type": "candle", "symbol": c.symbol, "interval": c.interval.value, "candle": c.as_dict()}
            messages.append(((c.symbol, c.interval), orjson.dumps(msg)))
        for client in self._clients:
            for key, data in messages:
                if key in client.candles:
                    client.offer(data)

    def _send_tickers(self) -> None:
        targets = [c for c in self._clients if c.tickers]
        if not targets:
            return
        data = orjson.dumps({"type": "tickers", "tickers": self._tickers()})
        for client in targets:
            client.offer(data)

    # -- connection side --------------------------------------------------------------------------

    async def serve(self, ws: WebSocket) -> None:
        """Run one client connection until it disconnects."""
        await ws.accept()
        if len(self._clients) >= self._api.ws_max_clients:
            detail = f"too many WebSocket clients (at most {self._api.ws_max_clients}); try again later"
            await ws.send_text(orjson.dumps({"type": "error", "error": "too_many_clients", "detail": detail}).decode())
            await ws.close(code=1013, reason="too many clients")
            return
        client = _Client(ws)
        self._clients.add(client)
        WS_CLIENTS.inc()
        sender = asyncio.create_task(self._send_loop(client))
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                reply = self._receive(client, message)
                if reply is not None:
                    client.offer(orjson.dumps(reply))
        except WebSocketDisconnect:
            pass
        finally:
            self._clients.discard(client)
            WS_CLIENTS.dec()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _receive(self, client: _Client, message: MutableMapping[str, Any]) -> dict[str, object] | None:
        text = message.get("text")
        if text is None:
            return {"type": "error", "error": "binary_frame",
                    "detail": "binary frames are not accepted; send JSON text messages"}
        if len(text) > self._api.ws_max_frame_bytes:
            return {"type": "error", "error": "message_too_large",
                    "detail": f"a message may have at most {self._api.ws_max_frame_bytes} bytes"}
        return self._handle(client, text)

    async def _send_loop(self, client: _Client) -> None:
        while True:
            data = await client.queue.get()
            await client.ws.send_text(data.decode())

    def _handle(self, client: _Client, text: str) -> dict[str, object] | None:
        try:
            msg = orjson.loads(text)
            if not isinstance(msg, dict):
                raise InvalidRequest("a message must be a JSON object")
            op, channel = msg.get("op"), msg.get("channel")
            if op not in ("subscribe", "unsubscribe"):
                raise InvalidRequest(f"unknown op {op!r}; expected 'subscribe' or 'unsubscribe'")
            if channel == "tickers":
                client.tickers = op == "subscribe"
                if client.tickers:
                    client.offer(orjson.dumps({"type": "tickers", "tickers": self._tickers()}))
                return {"type": f"{op}d", "channel": "tickers"}
            if channel != "candles":
                raise InvalidRequest(f"unknown channel {channel!r}; expected 'candles' or 'tickers'")
            symbol = require_symbol(str(msg.get("symbol", "")), self._symbols)
            interval = Interval.parse(str(msg.get("interval", "1m")))
            if interval not in self._intervals:
                known = ", ".join(i.value for i in self._intervals)
                raise InvalidRequest(f"interval {interval.value!r} is not streamed; streamed: {known}")
            key = (symbol, interval)
            cap = self._api.ws_max_subscriptions
            if op == "subscribe" and key not in client.candles and len(client.candles) >= cap:
                raise InvalidRequest(
                    f"too many subscriptions (at most {cap} per client); unsubscribe first"
                )
            (client.candles.add if op == "subscribe" else client.candles.discard)(key)
            return {"type": f"{op}d", "channel": "candles", "symbol": symbol, "interval": interval.value}
        except orjson.JSONDecodeError:
            return {"type": "error", "error": "invalid_json", "detail": "message is not valid JSON"}
        except InvalidRequest as exc:
            return {"type": "error", "error": exc.code, "detail": str(exc)}
