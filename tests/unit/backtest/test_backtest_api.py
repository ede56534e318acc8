"""POST /api/v1/backtest and GET /api/v1/backtest/files through the ASGI app."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.unit.backtest.test_paper import live

from coincast.api.app import Services, create_app
from coincast.api.ws import Hub
from coincast.domain import Interval
from coincast.settings import Settings, StreamSettings
from coincast.sources.base import SourceHealth
from coincast.store.duckdb import DuckDBStore
from coincast.stream.live import LiveState

T = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")


def preds_frame() -> pd.DataFrame:
    # long +10 %, flat, short -20 % (as in the engine's hand-checked test), and a never-trading model
    one = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "horizon": "1h",
            "origin_time": T[:3],
            "target_time": T[1:4],
            "origin_price": [100.0, 110, 110],
            "actual_price": [110.0, 110, 88],
        }
    )
    return pd.concat(
        [
            one.assign(model="drift", predicted_price=[101.0, 110, 80]),
            one.assign(model="persistence", predicted_price=one["origin_price"]),
        ],
        ignore_index=True,
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "backtests").mkdir()
    preds_frame().to_parquet(tmp_path / "backtests" / "preds.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other.parquet")  # not predictions: not listed
    settings = Settings(
        data_dir=tmp_path, symbols=("BTCUSDT", "ETHUSDT"), stream=StreamSettings(intervals=(Interval.H1,))
    )
    store = DuckDBStore.open(":memory:")
    await store.add_predictions(live(30))
    services = Services(
        settings,
        store,
        LiveState(Interval.H1),
        Hub(settings.symbols, settings.stream.intervals, list),
        SourceHealth("sim", simulated=True),
    )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    await store.close()


async def test_files_lists_only_predictions(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/backtest/files")
    assert r.status_code == 200
    body = r.json()
    assert [f["path"] for f in body["files"]] == ["backtests/preds.parquet"]
    assert body["files"][0]["rows"] == 6 and body["live"] is True


async def test_backtest_a_file_with_exact_numbers(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/backtest", json={"path": "backtests/preds.parquet", "fee_bps": 10, "slippage_bps": 5, "max_trades": 1}
    )
    assert r.status_code == 200, r.text
    results = {x["model"]: x for x in r.json()["results"]}
    k = 0.0015
    drift = results["drift"]
    # long 100 -> 110, then short 110 -> 88: closing the short trades its drifted weight 0.8 / 1.2
    short = (1 - k) * 1.2 * (1 - k * 0.8 / 1.2)
    assert drift["metrics"]["total_return"] == pytest.approx(((1 - k) ** 2 * 1.1) * short - 1)
    assert drift["buy_and_hold"]["total_return"] == pytest.approx(-0.12)
    assert drift["equity"]["buy_and_hold"] == pytest.approx([1.0, 1.1, 1.1, 0.88])
    assert len(drift["equity"]["strategy"]) == len(drift["equity"]["time"]) == 4
    assert drift["trades_total"] == 2 and [t["side"] for t in drift["trades"]] == ["short"]  # bounded: the last
    assert results["persistence"]["equity"]["strategy"] == [1.0, 1.0, 1.0, 1.0]


async def test_backtest_live_forecasts_is_paper_trading(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/backtest",
        json={"symbol": "btcusdt", "model": "drift", "horizon": "1h", "fee_bps": 0, "slippage_bps": 0},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    (res,) = body["results"]
    preds = live(30)
    # Held positions: each run of same-side forecasts earns side * (exit / entry - 1), by hand.
    gross, side, entry, exit_price = 1.0, 0.0, 0.0, 0.0
    for p in [*preds, None]:
        s = 0.0 if p is None else float(np.sign(p.predicted_price - p.origin_price))
        if s != side:
            gross *= 1 + side * (exit_price / entry - 1) if side else 1.0
            side, entry = s, (p.origin_price if p is not None else 0.0)
        exit_price = p.actual_price if p is not None else exit_price
    assert res["metrics"]["total_return"] == pytest.approx(gross - 1)
    last = preds[-1]
    assert body["position"]["weight"] == np.sign(last.predicted_price - last.origin_price)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"path": "../../etc/passwd"}, 422, "invalid_request"),
        ({"path": "backtests/none.parquet"}, 404, "not_found"),
        ({"path": "other.parquet"}, 422, "invalid_predictions"),
        ({"path": "backtests/preds.parquet", "strategy": "moon"}, 422, "unknown_strategy"),
        ({"path": "backtests/preds.parquet", "model": "lstm"}, 422, "invalid_request"),
        ({"path": "backtests/preds.parquet", "fee_bps": "lots"}, 422, "invalid_request"),
        ({"symbol": "ETHUSDT", "model": "drift"}, 409, "no_live_predictions"),
        ({"strategy": "long_only"}, 422, "invalid_request"),
    ],
)
async def test_errors(client: httpx.AsyncClient, body: dict[str, object], status: int, code: str) -> None:
    r = await client.post("/api/v1/backtest", json=body)
    assert (r.status_code, r.json()["error"]) == (status, code), r.text


async def test_unscored_live_forecasts_only_give_a_position(client: httpx.AsyncClient, tmp_path: Path) -> None:
    store = client._transport.app.state.services.store  # type: ignore[attr-defined]
    fresh = [dataclasses.replace(p, symbol="ETHUSDT", actual_price=None, scored_ms=None) for p in live(3)]
    await store.add_predictions(fresh)
    r = await client.post("/api/v1/backtest", json={"symbol": "ETHUSDT", "model": "drift"})
    assert r.status_code == 409 and "no scored live forecast" in r.json()["detail"]
