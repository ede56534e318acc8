"""Abuse limits on the REST API: a per-client rate limit and a request body size limit.

``RequestLimits`` is a plain ASGI middleware (no per-request task or body buffering): one counter
hit per API request, through the ``limits`` library. Mutating requests (POST, PUT, PATCH, DELETE)
and the assistant count against a stricter limit. Counters live in memory, or in Redis when
``cache.url`` is ``redis://…`` so that every ``serve`` worker shares them (when Redis fails,
requests are served unlimited and a warning is logged once a minute). A refused request gets 429
with ``Retry-After`` (seconds) in the one error body; a body over the size limit gets 413.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from starlette.exceptions import HTTPException

from coincast.api.errors import error_response
from coincast.domain import ConfigError
from coincast.settings import Settings

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STRICT_PREFIXES = ("/api/v1/assistant", "/api/chatbot")  # each question may call news sources and an LLM
LIMITED_PREFIX = "/api/"  # the REST API; /health, /metrics, the dashboard's files are not counted


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The counters and the two limits (requests per minute per client)."""

    limiter: FixedWindowRateLimiter
    general: RateLimitItem
    strict: RateLimitItem
    pool: Any = None  # the redis.asyncio ConnectionPool under the counters, closed by close()

    @classmethod
    def open(cls, storage: Storage, *, per_minute: int, strict_per_minute: int, pool: Any = None) -> RateLimits:
        return cls(FixedWindowRateLimiter(storage), RateLimitItemPerMinute(per_minute),
                   RateLimitItemPerMinute(strict_per_minute), pool)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """Counters in Redis when ``cache.url`` is redis://…, else in this process's memory."""
        url = settings.cache.url
        storage: Storage
        pool = None
        if url.startswith(("redis://", "rediss://")):
            try:
                from redis.asyncio import ConnectionPool
            except ImportError as exc:
                raise ConfigError("cache URL redis:// needs the redis extra: pip install 'coincast[redis]'") from exc
            # short timeouts: a request waits at most this long on a Redis that does not answer
            pool = ConnectionPool.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
            storage = RedisStorage(f"async+{url}", implementation="redispy", key_prefix="coincast-rl",
                                   wrap_exceptions=True, connection_pool=pool)  # type: ignore[arg-type]  # documented option
        else:
            storage = MemoryStorage()
        api = settings.api
        return cls.open(storage, per_minute=api.rate_limit_per_minute,
                        strict_per_minute=api.rate_limit_strict_per_minute, pool=pool)

    async def close(self) -> None:
        """Close the Redis connections (nothing to do in memory)."""
        if self.pool is not None:
            await self.pool.disconnect()

    def item_for(self, method: str, path: str) -> RateLimitItem:
        return self.strict if method in MUTATING or path.startswith(STRICT_PREFIXES) else self.general


class RequestLimits:
    """ASGI middleware applying :class:`RateLimits` and ``max_body_bytes`` to ``/api/`` requests."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits, max_body_bytes: int) -> None:
        self.app = app
        self.limits = limits
        self.max_body_bytes = max_body_bytes
        self._warned_at = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        item = self.limits.item_for(scope["method"], scope["path"])
        client = scope.get("client")
        key = (client[0] if client else "unknown", "strict" if item is self.limits.strict else "all")
        allowed, reset_s = True, 0.0
        try:
            if not await self.limits.limiter.hit(item, *key):
                allowed, reset_s = False, (await self.limits.limiter.get_window_stats(item, *key)).reset_time
        except StorageError as exc:  # Redis down: serve (fail open) rather than refuse every request
            self._storage_failed(exc)
        if not allowed:
            retry = max(1, math.ceil(reset_s - time.time()))
            detail = f"too many requests from this client ({item.amount} per minute here); retry in {retry} s"
            await error_response(429, "rate_limited", detail, {"Retry-After": str(retry)})(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _storage_failed(self, exc: StorageError) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:  # once a minute, not once per request
            self._warned_at = now
            log.warning("rate limits not applied: the counter store failed", extra={"error": repr(exc.storage_error)})

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` that stops a body (chunked or lying about its length) past the limit."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return counted

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body larger than {self.max_body_bytes} bytes"
        await error_response(413, "payload_too_large", detail)(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; the app answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
