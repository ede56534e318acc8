"""Binance spot REST client: klines and trades, rate-limit aware.

Weight accounting follows the spot REST documentation: every response carries
``X-MBX-USED-WEIGHT-1M`` (weight used by this IP in the current minute); HTTP 429 means the limit
was hit and ``Retry-After`` (seconds) says when to come back; HTTP 418 means the IP is banned
for ignoring 429s, so we stop at once with :class:`IpBanned` instead of making it worse.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from coincast.domain import (
    Candle,
    Clock,
    CoincastError,
    Interval,
    InvalidRequest,
    MalformedMessage,
    SystemClock,
    TransientError,
)
from coincast.sources.binance.wire import TradeRow, parse_rest_agg_trade, parse_rest_kline, parse_rest_trade

Sleep = Callable[[float], Awaitable[None]]

KLINES_LIMIT = 1000  # the documented maximum rows per /api/v3/klines request
TRADES_LIMIT = 1000  # the documented maximum rows per /api/v3/aggTrades request


class RateLimited(TransientError):
    """HTTP 429: the request weight limit was hit; ``retry_after_s`` from ``Retry-After``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IpBanned(CoincastError):
    """HTTP 418: Binance banned this IP for ignoring 429s; retrying would extend the ban."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "")))
    except ValueError:
        return 60.0


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict) and "msg" in body:
        return f"code {body.get('code')}: {body['msg']}"
    return str(body)[:200]


class BinanceRest:
    """Async client of the public spot market-data endpoints.

    Args:
        client: a ready ``httpx.AsyncClient`` whose ``base_url`` is the REST root
            (``https://api.binance.com`` or a test server).
        clock: wall time, to drop the still-open kline.
        weight_limit: the IP's weight budget per minute (1200 on older accounts, 6000 now).
        weight_headroom: fraction of the budget after which we pause until the next minute.
        max_attempts: attempts per request for 429, 5xx and network errors.
        sleep: how to wait (tests pass a recorder).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        clock: Clock | None = None,
        weight_limit: int = 6000,
        weight_headroom: float = 0.9,
        max_attempts: int = 6,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._clock = clock or SystemClock()
        self._weight_limit = weight_limit
        self._headroom = weight_headroom
        self._max_attempts = max_attempts
        self._sleep = sleep
        self.used_weight = 0
        self.requests = 0
        self.rate_limited = 0

    @classmethod
    def from_url(cls, rest_url: str, *, timeout_s: float = 10.0, **kwargs: Any) -> Self:
        """A client with its own ``httpx.AsyncClient`` (closed by :meth:`close`)."""
        return cls(httpx.AsyncClient(base_url=rest_url.rstrip("/"), timeout=timeout_s), **kwargs)

    async def close(self) -> None:
        await self._client.aclose()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return exc.retry_after_s
        backoff = wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5)
        return float(backoff(state))

    async def get(self, path: str, params: dict[str, Any]) -> Any:
        """GET a JSON endpoint with retries on 429 / 5xx / network errors.

        Raises:
            IpBanned: on HTTP 418 (no retry).
            InvalidRequest: on other 4xx (bad symbol, bad parameters), with Binance's message.
            TransientError: when every attempt failed.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=self._wait,
            stop=stop_after_attempt(self._max_attempts),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, path: str, params: dict[str, Any]) -> Any:
        self.requests += 1
        try:
            resp = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise TransientError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
        if used is not None and used.isdigit():
            self.used_weight = int(used)
        if resp.status_code == 418:
            raise IpBanned(
                f"Binance banned this IP (HTTP 418) on GET {path}: {_error_text(resp)}; "
                f"retry after {_retry_after(resp):.0f} s",
                _retry_after(resp),
            )
        if resp.status_code == 429:
            self.rate_limited += 1
            raise RateLimited(f"GET {path}: HTTP 429 {_error_text(resp)}", _retry_after(resp))
        if resp.status_code >= 500 or resp.status_code == 403:  # 403: Binance's WAF limit, back off
            raise TransientError(f"GET {path}: HTTP {resp.status_code} {_error_text(resp)}")
        if resp.status_code >= 400:
            raise InvalidRequest(f"GET {path} {params}: HTTP {resp.status_code} {_error_text(resp)}")
        if self.used_weight >= self._weight_limit * self._headroom:
            # Close to the limit: wait for the next minute window instead of provoking a 429.
            await self._sleep(60.0 - (self._clock.now_ms() / 1000.0) % 60.0)
            self.used_weight = 0
        return resp.json()

    async def ping(self) -> bool:
        """True when ``/api/v3/ping`` answers ``{}``."""
        return bool(await self.get("/api/v3/ping", {}) == {})

    async def klines(self, symbol: str, interval: Interval, start_ms: int, end_ms: int) -> AsyncIterator[list[Candle]]:
        """Closed klines with ``start_ms <= open_ms < end_ms``, one page (≤ 1000) at a time.

        Pages advance from the last open time; the candle still open at the clock's time is left
        out, so every yielded candle is final.
        """
        now_ms = self._clock.now_ms()
        cursor = start_ms
        while cursor < end_ms:
            params = {
                "symbol": symbol,
                "interval": interval.value,
                "startTime": cursor,
                "endTime": end_ms - 1,
                "limit": KLINES_LIMIT,
            }
            rows = await self.get("/api/v3/klines", params)
            if not isinstance(rows, list) or not rows:
                return
            candles = [parse_rest_kline(r, symbol, interval) for r in rows]
            page = [c for c in candles if c.open_ms + interval.ms <= now_ms and start_ms <= c.open_ms < end_ms]
            if page:
                yield page
            last = candles[-1].open_ms
            if len(rows) < KLINES_LIMIT or last + interval.ms <= cursor:
                return
            cursor = last + interval.ms

    async def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        on_bad: Callable[[object, str], None] | None = None,
    ) -> TradePage:
        """One page (≤ 1000) of ``/api/v3/aggTrades`` from an id or a time window (≤ 1 h wide).

        A malformed row goes to ``on_bad`` (or raises MalformedMessage when none is given).
        """
        params: dict[str, Any] = {"symbol": symbol, "limit": TRADES_LIMIT}
        if from_id is not None:
            params["fromId"] = from_id
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        rows = await self.get("/api/v3/aggTrades", params)
        return _page(rows, symbol, parse_rest_agg_trade, on_bad)

    async def historical_trades(
        self, symbol: str, *, from_id: int, on_bad: Callable[[object, str], None] | None = None
    ) -> TradePage:
        """One page (≤ 1000) of ``/api/v3/historicalTrades`` from a trade id."""
        params = {"symbol": symbol, "limit": TRADES_LIMIT, "fromId": from_id}
        rows = await self.get("/api/v3/historicalTrades", params)
        return _page(rows, symbol, parse_rest_trade, on_bad)


@dataclass(frozen=True, slots=True)
class TradePage:
    """Parsed rows of one trades page; ``size`` counts raw rows (for pagination)."""

    trades: list[TradeRow]
    size: int


def _page(
    rows: object,
    symbol: str,
    parse: Callable[[object, str], TradeRow],
    on_bad: Callable[[object, str], None] | None,
) -> TradePage:
    if not isinstance(rows, list):
        raise TransientError(f"trades for {symbol}: expected an array, got {str(rows)[:80]}")
    out: list[TradeRow] = []
    for row in rows:
        try:
            out.append(parse(row, symbol))
        except MalformedMessage as exc:
            if on_bad is None:
                raise
            on_bad(row, exc.reason)
    return TradePage(out, len(rows))
