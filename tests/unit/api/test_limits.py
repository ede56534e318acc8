"""RequestLimits: per-client counts, the stricter limit, 429 + Retry-After, body size, and counters
shared by every worker through a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from coincast.api.errors import install_error_handlers
from coincast.api.limits import RateLimits, RequestLimits
from coincast.settings import ApiSettings, CacheSettings, Settings


def worker(limits: RateLimits, max_body_bytes: int = 1024) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestLimits, limits=limits, max_body_bytes=max_body_bytes)

    @app.get("/api/v1/x")
    async def x() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/api/v1/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def client(app: FastAPI, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 4000)), base_url="http://t")


def settings(cache: str = "memory://", per_minute: int = 5, strict: int = 2) -> Settings:
    return Settings(cache=CacheSettings(url=cache),
                    api=ApiSettings(rate_limit_per_minute=per_minute, rate_limit_strict_per_minute=strict))


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    yield worker(RateLimits.from_settings(settings()))


async def test_limit_is_per_client_and_answers_429_with_retry_after(app: FastAPI) -> None:
    async with client(app, "10.0.0.1") as a, client(app, "10.0.0.2") as b:
        codes = [(await a.get("/api/v1/x")).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        r = await a.get("/api/v1/x")
        assert r.json()["error"] == "rate_limited" and "5 per minute" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert (await b.get("/api/v1/x")).status_code == 200  # another client has its own count
        assert (await a.get("/health")).status_code == 200  # only /api/ is counted


async def test_mutating_requests_have_the_stricter_limit(app: FastAPI) -> None:
    async with client(app) as c:
        codes = [(await c.post("/api/v1/echo", content=b"{}")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert (await c.get("/api/v1/x")).status_code == 200  # reads keep their own, larger budget


async def test_body_size_limit_declared_and_streamed(app: FastAPI) -> None:
    async with client(app, "10.0.0.3") as c:
        assert (await c.post("/api/v1/echo", content=b"x" * 1024)).json() == {"bytes": 1024}
        r = await c.post("/api/v1/echo", content=b"x" * 1025)
        assert r.status_code == 413 and r.json() == {"error": "payload_too_large",
                                                     "detail": "request body larger than 1024 bytes"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length
        for _ in range(5):
            yield b"y" * 300

    async with client(app, "10.0.0.4") as c:
        r = await c.post("/api/v1/echo", content=chunks())
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


async def test_workers_share_counts_through_redis(redis_url: str) -> None:
    """Two serve workers (two apps, two limiters) on one Redis: one budget per client."""
    limits = [RateLimits.from_settings(settings(redis_url)) for _ in range(2)]
    try:
        async with client(worker(limits[0])) as a, client(worker(limits[1])) as b:
            codes = [(await (a if i % 2 else b).get("/api/v1/x")).status_code for i in range(8)]
    finally:
        for lim in limits:
            await lim.close()
    assert codes == [200] * 5 + [429] * 3
    import redis

    with redis.Redis.from_url(redis_url) as r:
        assert r.keys("coincast-rl*"), "the counters live in Redis"


async def test_redis_down_serves_unlimited_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    limits = RateLimits.from_settings(settings("redis://127.0.0.1:1/0", per_minute=2))  # nothing listens
    try:
        async with client(worker(limits)) as c:
            codes = [(await c.get("/api/v1/x")).status_code for _ in range(4)]
    finally:
        await limits.close()
    assert codes == [200] * 4
    warnings = [r for r in caplog.records if "rate limits not applied" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per request
