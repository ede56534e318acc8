"""One Binance WebSocket connection: combined-stream URL, staleness watchdog, control requests.

Binance limits (spot ``web-socket-streams`` documentation): at most 1024 streams per
connection, at most 5 incoming messages per second (PING, PONG and JSON control messages
count), a connection lives at most 24 hours, and the server pings every 20 s (the
``websockets`` library answers with a pong carrying the same payload).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from coincast.domain import TransientError

MAX_STREAMS_PER_CONNECTION = 1024
MAX_CONTROL_PER_SECOND = 4  # Binance allows 5 incoming messages/s, pongs included: keep one spare


class ConnectionLost(TransientError):
    """The connection ended; ``had_data`` says whether it delivered any market data first."""

    def __init__(self, message: str, *, had_data: bool, stale: bool = False) -> None:
        super().__init__(message)
        self.had_data = had_data
        self.stale = stale


class ControlLimiter:
    """At most ``rate`` control messages in any one-second window.

    Hand-written (a deque of send times): a dependency for eight lines is not worth it, and the
    window must be exact because Binance disconnects on the sixth message in a second.
    """

    def __init__(self, rate: int = MAX_CONTROL_PER_SECOND) -> None:
        self._rate = rate
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            while len(self._sent) >= self._rate:
                wait = self._sent[0] + 1.0 - loop.time()
                if wait <= 0:
                    self._sent.popleft()
                else:
                    await asyncio.sleep(wait)
            self._sent.append(loop.time())


def combined_url(ws_url: str, streams: list[str]) -> str:
    """``<ws_url>/stream?streams=a/b/c`` (names as Binance writes them: lower-case symbols)."""
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


FrameHandler = Callable[["Connection", "str | bytes"], Awaitable[None]]


class Connection:
    """A live combined-stream connection.

    ``run()`` reads frames into ``on_frame`` until the connection closes or goes stale (no frame
    for ``stale_after_s``), then raises :class:`ConnectionLost`. While ``has_pending()`` is true
    it wakes after ``flush_after_s`` without a frame and calls ``flush()``, so a burst becomes one
    batch but a lone trade is not held back.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        ws: ClientConnection,
        streams: list[str],
        *,
        opened_ms: int,
        on_frame: FrameHandler,
        flush: Callable[[], Awaitable[None]],
        has_pending: Callable[[], bool],
        stale_after_s: float,
        flush_after_s: float = 0.02,
    ) -> None:
        self.ws = ws
        self.streams = list(streams)
        self.opened_ms = opened_ms
        self.number = next(Connection._ids)
        self.had_data = False
        self.first_data = asyncio.Event()
        self.last_frame_ms = opened_ms
        self._on_frame = on_frame
        self._flush = flush
        self._has_pending = has_pending
        self._stale_after_s = stale_after_s
        self._flush_after_s = flush_after_s
        self._limiter = ControlLimiter()
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._req_ids = itertools.count(1)

    @classmethod
    async def open(cls, ws_url: str, streams: list[str], *, connect_timeout_s: float, **kwargs: Any) -> Connection:
        """Connect to the combined stream of ``streams``.

        Raises:
            TransientError: refused, timed out, bad handshake (HTTP status) or network error.
        """
        if not 0 < len(streams) <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"{len(streams)} streams: a connection carries 1..1024")
        url = combined_url(ws_url, streams)
        try:
            ws = await websockets.connect(
                url,
                open_timeout=connect_timeout_s,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
                max_size=2**22,
                max_queue=4096,
            )
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            raise TransientError(f"connect {ws_url}: {type(exc).__name__}: {exc}") from exc
        except InvalidURI as exc:
            raise TransientError(f"connect {ws_url}: invalid URL: {exc}") from exc
        return cls(ws, streams, **kwargs)

    async def run(self) -> None:
        """Read until the end; always raises :class:`ConnectionLost`."""
        loop = asyncio.get_running_loop()
        last_frame = loop.time()
        while True:
            idle = loop.time() - last_frame
            pending = self._has_pending()
            timeout = self._flush_after_s if pending else max(0.0, self._stale_after_s - idle)
            try:
                async with asyncio.timeout(timeout):
                    raw = await self.ws.recv()
            except TimeoutError:
                if pending:
                    await self._flush()
                    continue
                raise ConnectionLost(
                    f"no message for {self._stale_after_s:g} s on connection {self.number}",
                    had_data=self.had_data,
                    stale=True,
                ) from None
            except ConnectionClosed as exc:
                raise ConnectionLost(f"connection {self.number} closed: {exc}", had_data=self.had_data) from exc
            last_frame = loop.time()
            await self._on_frame(self, raw)

    def mark_data(self, now_ms: int) -> None:
        self.last_frame_ms = now_ms
        if not self.had_data:
            self.had_data = True
            self.first_data.set()

    def resolve(self, req_id: object, result: Any, error: str) -> bool:
        """Complete the request ``req_id``; False when it is not ours."""
        fut = self._replies.pop(req_id, None) if isinstance(req_id, int) else None
        if fut is None or fut.done():
            return False
        if error:
            fut.set_exception(TransientError(f"Binance rejected request {req_id}: {error}"))
        else:
            fut.set_result(result)
        return True

    async def request(self, method: str, params: list[str] | None = None, *, timeout_s: float = 10.0) -> Any:
        """Send SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS and wait for the reply.

        Raises:
            TransientError: rejected, no reply in time, or the connection is gone.
        """
        await self._limiter.acquire()
        req_id = next(self._req_ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[req_id] = fut
        body: dict[str, Any] = {"method": method, "id": req_id}
        if params is not None:
            body["params"] = params
        try:
            await self.ws.send(orjson.dumps(body).decode())
            async with asyncio.timeout(timeout_s):
                result = await fut
        except (ConnectionClosed, TimeoutError) as exc:
            raise TransientError(f"{method} {params}: {type(exc).__name__}") from exc
        finally:
            self._replies.pop(req_id, None)
        if method == "SUBSCRIBE" and params:
            self.streams.extend(s for s in params if s not in self.streams)
        elif method == "UNSUBSCRIBE" and params:
            self.streams = [s for s in self.streams if s not in params]
        return result

    async def close(self) -> None:
        await self.ws.close()
