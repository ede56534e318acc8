"""One error body for every status, with nothing internal in it (the spec: test_docs.py)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from coincast.api.app import parse_time
from coincast.api.errors import install_error_handlers
from coincast.domain import InvalidTimeRange


def app_with_a_bug() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("cannot open /srv/secret/path for http://10.0.0.9/internal?key=abc")

    @app.get("/thing")
    async def thing(n: int) -> dict[str, int]:
        return {"n": n}

    @app.post("/thing")
    async def make_thing() -> dict[str, int]:
        return {"n": 1}

    return app


async def test_unexpected_errors_are_json_500_without_internals() -> None:
    transport = httpx.ASGITransport(app=app_with_a_bug(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "internal_error", "detail": "internal server error; the server log has the details"}


async def test_starlette_errors_use_the_same_body() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with_a_bug()), base_url="http://t") as c:
        missing = await c.get("/nowhere")
        wrong = await c.delete("/thing")
        invalid = await c.get("/thing", params={"n": "x" * 10_000})
    assert missing.status_code == 404 and missing.json() == {"error": "not_found", "detail": "Not Found"}
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET, POST"  # every route at the path, not only the first
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_request"
    assert len(invalid.json()["detail"]) < 600 and "xxxxxxxxxx" not in invalid.json()["detail"]  # input not echoed


def test_parse_time_accepts_ascii_epoch_ms_and_iso_only() -> None:
    assert parse_time("1700000000000", "start") == 1_700_000_000_000
    assert parse_time("2024-01-31T12:00:00Z", "start") == 1_706_702_400_000
    for bad in ("²", "١٢٣", "9" * 5000, "-5", "0001-01-01T00:00:00+14:00", "2024-01-31T12:00:00Z" * 10):
        try:
            parse_time(bad, "start")
        except InvalidTimeRange as exc:
            assert len(str(exc)) < 200, str(exc)
        else:
            raise AssertionError(f"{bad[:20]!r} was accepted")
