"""The forecasting API: the API key guards training and promotion; jobs, models and errors over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.unit.registry.models_synth import make_klines

from coincast.api.app import Services, create_app
from coincast.api.ws import Hub
from coincast.domain import Interval, SystemClock
from coincast.jobs.service import ModelService
from coincast.settings import ApiSettings, ModelSettings, Settings, StreamSettings
from coincast.sources.base import SourceHealth
from coincast.store.duckdb import DuckDBStore
from coincast.stream.live import LiveState


async def _client(tmp_path: Path, api_key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    data = tmp_path / "k.parquet"
    make_klines(300, step_ms=60_000, seed=4).to_parquet(data)
    settings = Settings(
        data_dir=tmp_path,
        symbols=("BTCUSDT", "ETHUSDT"),
        api=ApiSettings(api_key=SecretStr(api_key) if api_key else None),
        stream=StreamSettings(intervals=(Interval.M1,)),
        models=ModelSettings(train_data=data, validation_folds=2, retrain_every="off"),
    )
    store = DuckDBStore.open(":memory:")
    hub = Hub(settings.symbols, settings.stream.intervals, list)
    models = ModelService.build(settings, store, hub.broadcast, SystemClock())
    services = Services(
        settings, store, LiveState(Interval.M1), hub, SourceHealth("sim", simulated=True), models=models
    )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coincast.test") as client:
        yield client
    await models.jobs.stop()
    await store.close()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(tmp_path, "s3cret"):
        yield c


@pytest.fixture
async def keyless(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(tmp_path, None):
        yield c


BODY = {"symbol": "BTCUSDT", "horizon": "1m", "model": "drift", "promote": "never"}


async def test_without_a_configured_key_mutations_are_refused_saying_why(
    keyless: httpx.AsyncClient,
) -> None:
    for path, body in (("/api/v1/train", BODY), ("/api/v1/models/x/promote", None)):
        r = await keyless.post(path, json=body, headers={"X-API-Key": "anything"})
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden" and "COINCAST_API__API_KEY" in r.json()["detail"]
    assert (await keyless.get("/api/v1/models")).status_code == 200  # reading needs no key


async def test_key_is_required_and_checked(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/train", json=BODY)
    assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
    r = await client.post("/api/v1/train", json=BODY, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and r.json() == {"error": "forbidden", "detail": "invalid API key in X-API-Key"}
    assert (await client.post("/api/v1/models/x/promote")).status_code == 401
    assert (await client.post("/api/v1/models/x/promote", headers={"X-API-Key": "wrong"})).status_code == 403


async def test_train_status_list_promote_and_clear_errors(client: httpx.AsyncClient) -> None:
    key = {"X-API-Key": "s3cret"}
    r = await client.post("/api/v1/train", json=BODY, headers=key)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    async with asyncio.timeout(60):
        while (job := (await client.get(f"/api/v1/train/{job_id}")).json())["status"] in ("queued", "running"):
            await asyncio.sleep(0.02)
    assert job["status"] == "succeeded", job
    events = [e["event"] for e in job["events"]]
    assert events == ["epoch"] * 3 + ["metrics", "done"] and job["progress"] == 100.0
    model_id = job["model_id"]
    jobs = (await client.get("/api/v1/train")).json()["jobs"]
    assert [j["job_id"] for j in jobs] == [job_id] and "events" not in jobs[0]
    listed = (await client.get("/api/v1/models", params={"symbol": "btcusdt"})).json()
    assert [m["id"] for m in listed["models"]] == [model_id] and listed["models"][0]["live"] is False
    r = await client.post(f"/api/v1/models/{model_id}/promote", headers=key)
    assert r.status_code == 200 and r.json()["live"] is True
    assert (await client.get(f"/api/v1/models/{model_id}")).json()["live"] is True

    assert (await client.get("/api/v1/train/job-nope")).json()["error"] == "unknown_job"
    r = await client.post("/api/v1/models/nope/promote", headers=key)
    assert r.status_code == 404 and r.json()["error"] == "unknown_model"
    r = await client.post("/api/v1/train", json={**BODY, "model": "nope"}, headers=key)
    assert r.status_code == 422 and "known models" in r.json()["detail"]
    r = await client.post("/api/v1/train", json={**BODY, "symbol": "DOGEUSDT"}, headers=key)
    assert r.status_code == 404 and r.json()["error"] == "unknown_symbol"
    r = await client.post("/api/v1/predict", json={"symbol": "ETHUSDT", "horizon": "1m"})
    assert r.status_code == 409 and "no model is live for ETHUSDT 1m" in r.json()["detail"]
    r = await client.get("/api/v1/predictions/BTCUSDT", params={"horizon": "7m"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_interval"
    health = (await client.get("/health")).json()
    assert {"live", "serving", "models", "retraining", "expiry"} <= set(health["models"])
