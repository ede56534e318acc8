"""Redis fan-out of live candles to many API workers, plus a hot cache of the newest candles.

The ``process`` role publishes each burst of candle updates once (one PUBLISH) and keeps the
newest candle per (symbol, interval) in a hash, so a ``serve`` worker that starts late shows the
current candles at once instead of waiting for the next update.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Self

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from coincast.bus.codec import decode, encode
from coincast.domain import Candle, MalformedMessage, TransientError


class RedisFanout:
    """Live candle updates through Redis pub/sub (``<prefix>candles``) and a ``<prefix>latest`` hash.

    Args:
        client: a ``redis.asyncio.Redis``.
        prefix: key and channel prefix (several deployments can share one Redis).
    """

    def __init__(self, client: aioredis.Redis, prefix: str = "coincast:") -> None:
        self._r = client
        self._channel = f"{prefix}candles"
        self._latest = f"{prefix}latest"
        self.malformed = 0

    @classmethod
    def from_url(cls, url: str, prefix: str = "coincast:") -> Self:
        return cls(aioredis.Redis.from_url(url), prefix)

    async def publish(self, candles: Sequence[Candle]) -> None:
        if not candles:
            return
        newest: dict[str, Candle] = {}
        for c in candles:
            key = f"{c.symbol}:{c.interval.value}"
            if key not in newest or c.open_ms >= newest[key].open_ms:
                newest[key] = c
        try:
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.publish(self._channel, encode(list(candles)))
                pipe.hset(self._latest, mapping={k: encode([c]) for k, c in newest.items()})
                await pipe.execute()
        except RedisError as exc:
            raise TransientError(f"Redis publish failed: {exc}") from exc

    async def latest(self) -> list[Candle]:
        """The newest candle of every (symbol, interval) published so far."""
        try:
            raw: dict[Any, Any] = await self._r.hgetall(self._latest)
        except RedisError as exc:
            raise TransientError(f"Redis read failed: {exc}") from exc
        out: list[Candle] = []
        for value in raw.values():
            with contextlib.suppress(MalformedMessage):
                got = decode(value)
                if isinstance(got, list):
                    out.extend(got)
        return sorted(out, key=lambda c: c.open_ms)

    async def subscribe(self) -> AsyncIterator[list[Candle]]:
        """Every published burst, from now on (pub/sub keeps no history: warm up with :meth:`latest`)."""
        pubsub = self._r.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            async for msg in pubsub.listen():
                if msg.get("type") != "message":
                    continue
                try:
                    got = decode(msg["data"])
                except MalformedMessage:
                    self.malformed += 1
                    continue
                if isinstance(got, list):
                    yield got
        except RedisError as exc:
            raise TransientError(f"Redis subscription lost: {exc}") from exc
        finally:
            with contextlib.suppress(RedisError):
                await pubsub.unsubscribe(self._channel)
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._r.aclose()
