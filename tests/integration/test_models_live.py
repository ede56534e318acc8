"""Live forecasting in a running ``coincast up --source sim`` (1 s candles): hot reload, scores, expiry, jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets
from tests.integration.conftest import UpProcess, coincast_up
from tests.unit.registry.models_synth import make_klines

from coincast.domain import Interval
from coincast.jobs.train import TrainRequest, train_model
from coincast.registry.files import FileModelRegistry

pytestmark = pytest.mark.integration

KEY = "test-key"


def _train(reg: FileModelRegistry, klines: Any, symbol: str, model: str, **kw: Any) -> str:
    req = TrainRequest(symbol, Interval.S1, model, folds=2, **kw)
    return train_model(req, klines, reg, lambda e, f: None).version.id


def _forecasts(up: UpProcess, symbol: str, limit: int = 1000) -> dict[str, Any]:
    r = up.get(f"/api/v1/predictions/{symbol}", horizon="1s", limit=limit)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _by_model(up: UpProcess, symbol: str, model_id: str) -> list[dict[str, Any]]:
    return [p for p in _forecasts(up, symbol)["forecasts"] if p["model_id"] == model_id]


async def _train_over_ws(up: UpProcess, bodies: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Start jobs over HTTP while listening on the WebSocket; their events by job id, up to 'done'."""
    import httpx

    got: dict[str, list[dict[str, Any]]] = {}
    async with websockets.connect(f"ws://127.0.0.1:{up.port}/ws", open_timeout=10) as ws:
        async with httpx.AsyncClient(base_url=up.url, timeout=10) as http:
            for body in bodies:
                r = await http.post("/api/v1/train", json=body, headers={"X-API-Key": KEY})
                assert r.status_code == 202, r.text
                got[r.json()["job_id"]] = []
        async with asyncio.timeout(90):
            while not all(ev and ev[-1]["event"] == "done" for ev in got.values()):
                msg = json.loads(await ws.recv())
                if msg["type"] == "training" and msg["job_id"] in got:
                    got[msg["job_id"]].append(msg)
    return got


def test_live_models_reload_score_expire_and_train(tmp_path: Path) -> None:
    data = tmp_path / "data"
    klines = make_klines(400, step_ms=1000, seed=7, vol=0.0005, symbols=("BTCUSDT", "ETHUSDT"))
    train_file = tmp_path / "klines_1s.parquet"
    klines.to_parquet(train_file)
    reg = FileModelRegistry(data / "models")
    first = _train(reg, klines, "BTCUSDT", "persistence", promote="always")
    second = _train(reg, klines, "BTCUSDT", "drift")
    env = {
        "COINCAST_STREAM__INTERVALS": "1s,1m",
        "COINCAST_STORE__FLUSH_MS": "200",
        "COINCAST_STREAM__GRACE_MS": "300",
        "COINCAST_SYMBOLS": "BTCUSDT,ETHUSDT,SOLUSDT",
        "COINCAST_API__API_KEY": KEY,
        "COINCAST_MODELS__TRAIN_DATA": str(train_file),
        "COINCAST_MODELS__VALIDATION_FOLDS": "2",
        "COINCAST_MODELS__RELOAD_POLL_MS": "200",
        "COINCAST_MODELS__SCORE_EVERY_MS": "300",
        "COINCAST_MODELS__RETRAIN_EVERY": "off",
    }
    with coincast_up(data, "--source", "sim", env=env) as up:
        pid = up.proc.pid
        up.wait_until(lambda: len(_by_model(up, "BTCUSDT", first)) >= 3, what="forecasts of the first model")

        # hot reload: promote from another process (the CLI), no restart
        out = subprocess.run(
            [sys.executable, "-m", "coincast", "models", "promote", second, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        up.wait_until(lambda: len(_by_model(up, "BTCUSDT", second)) >= 1, timeout=10, what="the promoted model")
        up.wait_until(lambda: len(_by_model(up, "BTCUSDT", second)) >= 3, what="more forecasts")
        assert up.proc.poll() is None and up.proc.pid == pid
        preds = _forecasts(up, "BTCUSDT")["forecasts"]
        switch = min(p["origin_ms"] for p in preds if p["model_id"] == second)
        assert max(p["origin_ms"] for p in preds if p["model_id"] == first) >= switch - 1000
        # (the simulator may start with a burst of history; look at the seconds around the switch)
        origins = sorted({p["origin_ms"] for p in preds if p["origin_ms"] >= switch - 10_000})
        assert origins[0] <= switch - 3000  # the first model was serving before the switch
        bars = up.get(
            "/api/v1/candles/BTCUSDT", interval="1s", start=str(origins[0]), end=str(origins[-1]), limit=5000
        ).json()["candles"]
        closed = [c["open_time"] for c in bars if c["closed"]]
        assert origins == closed  # every closed candle across the switch has its forecast: none lost
        assert origins == list(range(origins[0], origins[-1] + 1000, 1000))
        for p in preds:
            assert p["lower"] < p["predicted_price"] < p["upper"] and p["target_ms"] == p["origin_ms"] + 1000

        # the live track record: forecasts are scored once their target bar has closed
        up.wait_until(lambda: _forecasts(up, "BTCUSDT")["track_record"]["model"]["n"] >= 2, what="scores")
        body = _forecasts(up, "BTCUSDT")
        rec = body["track_record"]["model"]
        assert body["serving"] and body["latest"]["model_id"] == second and body["model"]["model_id"] == second
        assert rec["mae"] >= 0 and 0 <= rec["direction_hit_rate"] <= 1 and 0 <= rec["interval_coverage"] <= 1
        assert any(p["actual_price"] is not None for p in body["forecasts"])
        assert up.get("/api/crypto/predictions/BTCUSDT", horizon="1s").json()["model"]["model_id"] == second

        import httpx

        r = httpx.post(f"{up.url}/api/v1/predict", json={"symbol": "BTCUSDT", "horizon": "1s", "steps": 3}, timeout=10)
        assert r.status_code == 200, r.text
        steps = r.json()["forecasts"]
        assert [s["step"] for s in steps] == [1, 2, 3] and r.json()["model_id"] == second
        assert all(s["lower"] < s["predicted_price"] < s["upper"] for s in steps)

        # training over the WebSocket, in order; a failing job reports its error; the key is required
        assert httpx.post(f"{up.url}/api/v1/train", json={"symbol": "BTCUSDT"}, timeout=10).status_code == 401
        ok = {"symbol": "BTCUSDT", "horizon": "1s", "model": "drift", "promote": "never"}
        bad = {**ok, "symbol": "SOLUSDT"}  # not in the training file
        jobs = asyncio.run(_train_over_ws(up, [ok, bad]))
        (ok_id, ok_events), (bad_id, bad_events) = jobs.items()
        assert [e["event"] for e in ok_events] == ["epoch"] * 3 + ["metrics", "done"]
        assert [e["seq"] for e in ok_events] == [1, 2, 3, 4, 5]
        for e in ok_events[:3]:
            assert {"loss", "val_loss", "progress", "eta_s", "epoch"} <= set(e)
        assert [e["progress"] for e in ok_events[:3]] == sorted(e["progress"] for e in ok_events[:3])
        assert ok_events[3]["metrics"]["n"] > 0 and ok_events[4]["status"] == "succeeded"
        assert [e["event"] for e in bad_events] == ["error", "done"]
        assert "SOLUSDT" in bad_events[0]["detail"] and bad_events[1]["status"] == "failed"
        status = up.get(f"/api/v1/train/{bad_id}").json()
        assert status["status"] == "failed" and "SOLUSDT" in status["error"]
        assert up.get(f"/api/v1/train/{ok_id}").json()["model_id"] == ok_events[4]["model_id"]

        # expiry: a model past it stops forecasting and /health says why
        short = _train(reg, klines, "ETHUSDT", "persistence", promote="always", expiry_ms=8_000)
        up.wait_until(lambda: len(_by_model(up, "ETHUSDT", short)) >= 1, what="forecasts before expiry")

        def expired() -> dict[str, Any] | None:
            models = up.get("/health").json()["models"]["models"]
            return next((m for m in models if m["model_id"] == short and m["status"] == "expired"), None)

        status = up.wait_until(expired, what="expiry in /health")
        assert "expired at" in status["reason"] and "retrain" in status["reason"]
        n = len(_by_model(up, "ETHUSDT", short))
        mark = max(p["origin_ms"] for p in _forecasts(up, "BTCUSDT")["forecasts"])
        up.wait_until(
            lambda: max(p["origin_ms"] for p in _forecasts(up, "BTCUSDT")["forecasts"]) >= mark + 3000,
            what="three more candles",
        )
        assert len(_by_model(up, "ETHUSDT", short)) == n  # nothing new after expiry
        eth = _forecasts(up, "ETHUSDT")
        assert not eth["serving"] and eth["latest"] is None and "expired" in eth["reason"]
        r = httpx.post(f"{up.url}/api/v1/predict", json={"symbol": "ETHUSDT", "horizon": "1s"}, timeout=10)
        assert r.status_code == 409 and "expired" in r.json()["detail"]
        assert up.stop() == 0
