"""/docs and /redoc work offline; the OpenAPI spec documents every error status the server sends."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from coincast.api.app import Services, create_app
from coincast.api.docs import ERRORS, STATUSES, WS_PROTOCOL, ErrorBody
from coincast.api.ws import Hub
from coincast.domain import Interval, SystemClock
from coincast.jobs.service import ModelService
from coincast.settings import ApiSettings, ModelSettings, Settings, StreamSettings
from coincast.sources.base import SourceHealth
from coincast.store.duckdb import DuckDBStore
from coincast.stream.live import LiveState

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Any]:
    settings = Settings(
        data_dir=tmp_path, symbols=("BTCUSDT", "ETHUSDT"), api=ApiSettings(api_key=SecretStr("s3cret")),
        stream=StreamSettings(intervals=(Interval.M1, Interval.H1)), models=ModelSettings(retrain_every="off"),
    )
    store = DuckDBStore.open(":memory:")
    hub = Hub(settings.symbols, settings.stream.intervals, list)
    models = ModelService.build(settings, store, hub.broadcast, SystemClock())
    yield create_app(Services(settings, store, LiveState(Interval.M1), hub, SourceHealth("sim", simulated=True),
                              models=models))
    await models.jobs.stop()
    await store.close()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://coincast.test") as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_assets_the_app_serves(client: httpx.AsyncClient, page: str) -> None:
    html = (await client.get(page)).text
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    assert urls and not [u for u in urls if "://" in u], urls  # nothing from a CDN or any other host
    for url in urls:
        r = await client.get(url)
        assert r.status_code == 200, url
        assert len(r.content) > 500 or url.endswith(".json"), url
    assert (await client.get("/static/docs/nope.js")).json()["error"] == "not_found"


async def test_every_route_documents_its_errors_with_the_real_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(ERRORS), "add new routes to coincast.api.docs.ERRORS"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["error", "detail"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            errors = {int(s) for s in op["responses"] if int(s) >= 400}
            assert errors == ERRORS[(method.upper(), path)], (method, path)
            for status in errors:
                body = op["responses"][str(status)]["content"]["application/json"]
                assert body["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
                ErrorBody.model_validate(body["example"])
    assert "`WS /ws`" in spec["info"]["description"] and "### Errors" in spec["info"]["description"]


async def test_the_api_key_is_a_security_scheme_on_the_mutating_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "The API key of the server (api.api_key; in embedded mode generated into data/api_key).",
    }
    secured = {(m, p) for p, ops in spec["paths"].items() for m, op in ops.items() if op.get("security")}
    assert secured == {("post", "/api/v1/train"), ("post", "/api/v1/models/{model_id}/promote")}
    # what Swagger's Authorize sends is what the server checks
    wrong = await client.post("/api/v1/models/x/promote", headers={"X-API-Key": "nope"})
    right = await client.post("/api/v1/models/x/promote", headers={"X-API-Key": "s3cret"})
    assert (wrong.status_code, right.status_code) == (403, 404)


#: real error answers: method, path, request kwargs, status expected
ERROR_CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/api/v1/candles/PEPEUSDT", {}, 404),
    ("GET", "/api/v1/candles/BTCUSDT", {"params": {"interval": "7m"}}, 422),
    ("GET", "/api/v1/candles/BTCUSDT", {"params": {"start": "yesterday"}}, 422),
    ("GET", "/api/v1/candles/BTCUSDT", {"params": {"limit": 0}}, 422),
    ("GET", "/api/v1/indicators/BTCUSDT", {"params": {"interval": "4h"}}, 422),
    ("GET", "/api/crypto/XMRUSDT", {}, 404),
    ("POST", "/api/v1/predict", {"json": {"symbol": "BTCUSDT", "horizon": "1h"}}, 409),
    ("POST", "/api/v1/train", {"json": {"symbol": "BTCUSDT", "horizon": "1h"}}, 401),
    ("POST", "/api/v1/train", {"json": {"symbol": "BTCUSDT"}, "headers": {"X-API-Key": "bad"}}, 403),
    ("POST", "/api/v1/train", {"json": {"symbol": "BTCUSDT", "horizon": "1h", "oops": 1},
                               "headers": {"X-API-Key": "s3cret"}}, 422),
    ("GET", "/api/v1/train/job-nope", {}, 404),
    ("GET", "/api/v1/models/BTCUSDT-1h-nope", {}, 404),
    ("POST", "/api/v1/models/BTCUSDT-1h-nope/promote", {"headers": {"X-API-Key": "s3cret"}}, 404),
    ("GET", "/api/v1/analytics.csv", {"params": {"table": "nope"}}, 422),
    ("POST", "/api/v1/assistant/ask", {"json": {"question": ""}}, 422),
    ("POST", "/api/chatbot/ask", {"json": {}}, 422),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), ERROR_CASES)
async def test_real_error_answers_are_the_documented_ones(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    spec = (await client.get("/openapi.json")).json()
    r = await client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    template = next(t for t in spec["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path))
    assert str(status) in spec["paths"][template][method.lower()]["responses"]
    assert set(r.json()) == {"error", "detail"}
    ErrorBody.model_validate(r.json())


async def test_metrics_answer_without_a_redirect(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/metrics/"):  # the second for scrapers configured before
        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), path
        assert "coincast_ws_clients" in r.text


def test_statuses_and_the_ws_protocol_are_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    assert WS_PROTOCOL.strip() in readme
    assert set(STATUSES) == {400, 401, 403, 404, 409, 413, 422, 429}


async def test_health_shows_the_history_download(tmp_path: Path) -> None:
    from coincast.jobs.history import BackfillProgress, IntervalProgress

    settings = Settings(data_dir=tmp_path, symbols=("BTCUSDT",))
    store = DuckDBStore.open(":memory:")
    progress = BackfillProgress("running", {"1d": IntervalProgress(1000, 2000, 500), "1h": IntervalProgress(400)})
    app = create_app(Services(settings, store, LiveState(Interval.M1), Hub(settings.symbols, (Interval.M1,), list),
                              SourceHealth("binance"), history=progress))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://coincast.test") as c:
        got = (await c.get("/health")).json()["history"]
    await store.close()
    assert got == {"status": "running", "percent": 25.0, "error": "",
                   "intervals": {"1d": {"days": 1000, "total": 2000, "done": 500},
                                 "1h": {"days": 400, "total": None, "done": 0}}}


async def test_every_route_has_a_response_model_and_real_answers_match_it(tmp_path: Path) -> None:
    from tests.unit.assistant.conftest import hourly

    from coincast.api.schemas import RESPONSES

    settings = Settings(data_dir=tmp_path, symbols=("BTCUSDT", "ETHUSDT"),
                        stream=StreamSettings(intervals=(Interval.H1,)), models=ModelSettings(retrain_every="off"))
    store = DuckDBStore.open(":memory:")
    await store.upsert(hourly("BTCUSDT")[:50])
    hub = Hub(settings.symbols, settings.stream.intervals, list)
    models = ModelService.build(settings, store, hub.broadcast, SystemClock())
    app = create_app(Services(settings, store, LiveState(Interval.H1), hub, SourceHealth("sim", simulated=True),
                              models=models))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://coincast.test") as c:
            spec = (await c.get("/openapi.json")).json()
            assert {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops} == set(RESPONSES)
            for (method, path), model in RESPONSES.items():
                if model is None:
                    continue
                ok = next(v for k, v in spec["paths"][path][method.lower()]["responses"].items() if k.startswith("2"))
                assert ok["content"]["application/json"]["schema"]["$ref"].endswith(model.__name__)
            answers = {
                "/health": await c.get("/health"),
                "/api/v1/symbols": await c.get("/api/v1/symbols"),
                "/api/v1/candles/{symbol}": await c.get("/api/v1/candles/BTCUSDT", params={"interval": "1h"}),
                "/api/v1/indicators/{symbol}": await c.get("/api/v1/indicators/BTCUSDT", params={"interval": "1h"}),
                "/api/v1/tickers": await c.get("/api/v1/tickers"),
                "/api/crypto/{symbol}": await c.get("/api/crypto/BTCUSDT"),
                "/api/v1/predictions/{symbol}": await c.get("/api/v1/predictions/BTCUSDT"),
                "/api/v1/model-families": await c.get("/api/v1/model-families"),
                "/api/v1/models": await c.get("/api/v1/models"),
                "/api/v1/train": await c.get("/api/v1/train"),
                "/api/v1/backtest/files": await c.get("/api/v1/backtest/files"),
                "/api/v1/assistant/ask": await c.post("/api/v1/assistant/ask", json={"question": "btc price"}),
            }
        for path, r in answers.items():
            method = "POST" if path.endswith("/ask") else "GET"
            model = RESPONSES[(method, path)]
            assert r.status_code == 200 and model is not None, path
            model.model_validate(r.json())  # extra fields are errors where the model is closed
        assert len(answers["/api/v1/candles/{symbol}"].json()["candles"]) == 50
    finally:
        await models.jobs.stop()
        await store.close()
