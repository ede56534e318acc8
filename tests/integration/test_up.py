"""`coincast up --source sim` as a user runs it: health, REST, WebSocket, restart, SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
import websockets
from tests.integration.conftest import UpProcess, coincast_up

pytestmark = pytest.mark.integration

FAST = {"COINCAST_STREAM__INTERVALS": "1s,1m,5m,1h,1d", "COINCAST_STORE__FLUSH_MS": "200",
        "COINCAST_STREAM__GRACE_MS": "300",
        "COINCAST_SOURCE__SIM_HISTORY_S": "0"}


def closed_1s(up: UpProcess, symbol: str = "BTCUSDT") -> list[dict]:
    r = up.get(f"/api/v1/candles/{symbol}", interval="1s", limit=5000)
    assert r.status_code == 200, r.text
    return [c for c in r.json()["candles"] if c["closed"]]


def test_health_symbols_candles_and_errors(tmp_path: Path) -> None:
    with coincast_up(tmp_path / "d", "--source", "sim", env=FAST) as up:
        health = up.get("/health").json()
        assert health["status"] == "ok"
        assert health["source"]["name"] == "sim" and health["source"]["simulated"] is True
        assert up.get("/api/v1/symbols").json()["symbols"][:2] == ["BTCUSDT", "ETHUSDT"]
        assert len(up.get("/api/v1/symbols").json()["symbols"]) == 10

        got = up.wait_until(lambda: len(closed_1s(up)) >= 3, what="three closed 1s candles")
        assert got
        candles = closed_1s(up)
        times = [c["open_time"] for c in candles]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert all(t % 1000 == 0 for t in times)
        for c in candles:
            assert c["low"] <= min(c["open"], c["close"]) <= max(c["open"], c["close"]) <= c["high"]
        tickers = up.wait_until(lambda: len(up.get("/api/v1/tickers").json()["tickers"]) == 10, what="tickers")
        assert tickers

        # errors: unknown symbol -> 404, bad interval or date -> 422, each with a clear message
        r = up.get("/api/v1/candles/FOOUSDT")
        assert r.status_code == 404 and r.json()["error"] == "unknown_symbol" and "FOOUSDT" in r.json()["detail"]
        r = up.get("/api/v1/candles/BTCUSDT", interval="7m")
        assert r.status_code == 422 and "7m" in r.json()["detail"] and "1h" in r.json()["detail"]
        r = up.get("/api/v1/candles/BTCUSDT", start="yesterday")
        assert r.status_code == 422 and r.json()["error"] == "invalid_time_range"
        r = up.get("/api/v1/candles/BTCUSDT", start="2030-01-01", end="2020-01-01")
        assert r.status_code == 422
        r = up.get("/api/v1/candles/BTCUSDT", limit=0)
        assert r.status_code == 422
        # a window in the past is honoured
        first = candles[0]["open_time"]
        r = up.get("/api/v1/candles/BTCUSDT", interval="1s", start=str(first), end=str(first))
        assert [c["open_time"] for c in r.json()["candles"]] == [first]
        metrics = up.get("/metrics").text
        assert "coincast_stream_trades_total" in metrics
        assert up.stop() == 0


def test_websocket_streams_live_candles(tmp_path: Path) -> None:
    async def run(url: str) -> list[dict]:
        got: list[dict] = []
        async with websockets.connect(url, open_timeout=10) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": "ETHUSDT", "interval": "1s"}))
            await ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": "NOPE", "interval": "1s"}))
            await ws.send("not json")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                got.append(msg)
                closed = [m for m in got if m["type"] == "candle" and m["candle"]["closed"]]
                if len(closed) >= 2 and any(m["type"] == "candle" and not m["candle"]["closed"] for m in got):
                    break
        return got

    with coincast_up(tmp_path / "d", "--source", "sim", env=FAST) as up:
        msgs = asyncio.run(run(f"ws://127.0.0.1:{up.port}/ws"))
        assert up.stop() == 0
    kinds = [m["type"] for m in msgs]
    assert kinds[0] == "subscribed"
    errors = [m for m in msgs if m["type"] == "error"]
    assert {e["error"] for e in errors} == {"unknown_symbol", "invalid_json"}
    candles = [m for m in msgs if m["type"] == "candle"]
    assert candles and all(m["symbol"] == "ETHUSDT" and m["interval"] == "1s" for m in candles)
    closed = [m["candle"]["open_time"] for m in candles if m["candle"]["closed"]]
    assert closed == sorted(closed) and len(set(closed)) == len(closed)


def test_clean_restart_keeps_every_candle(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with coincast_up(data, "--source", "sim", env=FAST) as up:
        up.wait_until(lambda: len(closed_1s(up)) >= 3, what="closed candles")
        assert up.stop(signal.SIGTERM) == 0
        log = up.log.read_text()
    assert "runtime stopped" in log
    with coincast_up(data, "--source", "sim", env=FAST) as up2:
        after = closed_1s(up2)
        assert up2.stop() == 0
    # the last seen candles (closed at shutdown, flushed) are all there
    assert len(after) >= 3


def test_sigkill_loses_nothing_older_than_the_flush_interval(tmp_path: Path) -> None:
    data = tmp_path / "d"

    async def watch(url: str, seconds: float) -> list[tuple[float, int]]:
        seen: list[tuple[float, int]] = []
        async with websockets.connect(url, open_timeout=10) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": "BTCUSDT", "interval": "1s"}))
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
                except TimeoutError:
                    break
                if msg["type"] == "candle" and msg["candle"]["closed"]:
                    seen.append((time.monotonic(), msg["candle"]["open_time"]))
        return seen

    with coincast_up(data, "--source", "sim", env=FAST) as up:
        seen = asyncio.run(watch(f"ws://127.0.0.1:{up.port}/ws", 4.0))
        up.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        up.proc.wait(10)
    assert len(seen) >= 2
    must_have = [t for (at, t) in seen if at < killed_at - 0.2 - 0.5]  # flush 200 ms + margin
    with coincast_up(data, "--source", "sim", env=FAST) as up2:
        stored = {c["open_time"] for c in closed_1s(up2)}
        up2.stop()
    missing = [t for t in must_have if t not in stored]
    assert must_have and not missing


def test_first_start_has_simulated_history_and_restart_resumes_it(tmp_path: Path) -> None:
    env = {**FAST, "COINCAST_SOURCE__SIM_HISTORY_S": "120"}
    data = tmp_path / "d"
    with coincast_up(data, "--source", "sim", env=env) as up:
        first = up.wait_until(lambda: len(c := closed_1s(up)) >= 110 and c, what="two minutes of history")
        ind = up.get("/api/v1/indicators/BTCUSDT", interval="1s").json()
        assert ind["ready"] is True and ind["closed"]["rsi_14"] is not None and 0 <= ind["closed"]["rsi_14"] <= 100
        assert up.get("/api/v1/indicators/BTCUSDT", interval="4h").status_code == 422
        assert up.stop() == 0
    assert first[-1]["open_time"] - first[0]["open_time"] >= 109_000
    with coincast_up(data, "--source", "sim", env=env) as up2:
        again = up2.wait_until(lambda: len(c := closed_1s(up2)) > len(first) and c, what="resumed candles")
        assert up2.stop() == 0
    times = [c["open_time"] for c in again]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert not [b - a for a, b in pairwise(times) if b - a != 1000]  # no gap, no overlap
    assert max(abs(b["open"] / a["close"] - 1) for a, b in pairwise(again)) < 0.01


def test_embedded_mode_keeps_a_local_api_key_for_mutations(tmp_path: Path) -> None:
    data = tmp_path / "d"
    env = {**FAST, "COINCAST_SOURCE__SIM_HISTORY_S": "300"}
    with coincast_up(data, "--source", "sim", env=env) as up:
        key_file = data / "api_key"
        key = key_file.read_text().strip()
        assert len(key) >= 24 and (key_file.stat().st_mode & 0o077) == 0  # owner-only
        up.wait_until(lambda: len(closed_1s(up)) >= 250, what="history to train on")
        body = {"symbol": "BTCUSDT", "horizon": "1s", "model": "drift", "promote": "never"}
        assert httpx.post(up.url + "/api/v1/train", json=body, timeout=10).status_code == 401
        assert httpx.post(up.url + "/api/v1/train", json=body, headers={"X-API-Key": "nope"},
                          timeout=10).status_code == 403
        r = httpx.post(up.url + "/api/v1/train", json=body, headers={"X-API-Key": key}, timeout=10)
        assert r.status_code == 202, r.text
        assert up.stop() == 0
    with coincast_up(data, "--source", "sim", env=env) as up2:  # the same key on the next start
        assert (data / "api_key").read_text().strip() == key
        up2.stop()
