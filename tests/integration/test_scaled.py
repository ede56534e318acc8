"""The scaled-out deployment on real servers: ingest -> Kafka -> process -> PostgreSQL -> serve."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

FAST = {"COINCAST_STREAM__INTERVALS": "1s,1m", "COINCAST_STORE__FLUSH_MS": "200", "COINCAST_STREAM__GRACE_MS": "300",
        "COINCAST_SOURCE__SIM_HISTORY_S": "0", "COINCAST_SOURCE__SIM_HISTORY_DAYS": "0",
        "COINCAST_SYMBOLS": "BTCUSDT,ETHUSDT,SOLUSDT"}


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "coincast", *args], stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, **FAST, **env})


@pytest.mark.parametrize("fanout", ["kafka", "redis"])
def test_roles_around_kafka_and_postgres(
    tmp_path: Path, kafka_bootstrap: str, postgres_url: str, fanout: str, request: pytest.FixtureRequest
) -> None:
    prefix_env = {"COINCAST_BUS__URL": f"kafka://{kafka_bootstrap}", "COINCAST_STORE__URL": postgres_url,
                  "COINCAST_DATA_DIR": str(tmp_path)}
    if fanout == "redis":  # live candles reach serve through Redis pub/sub instead of the candles topic
        prefix_env["COINCAST_CACHE__URL"] = request.getfixturevalue("redis_url")
    port, process_port, ingest_port = free_port(), free_port(), free_port()
    procs = {
        "process": start(["process", "--metrics-port", str(process_port)], tmp_path / "process.log", prefix_env),
        "serve": start(["serve", "--port", str(port)], tmp_path / "serve.log", prefix_env),
        "ingest": start(["ingest", "--source", "sim", "--metrics-port", str(ingest_port)], tmp_path / "ingest.log",
                        prefix_env),
    }
    url = f"http://127.0.0.1:{port}"

    def logs() -> str:
        return "\n".join(f"--- {n}\n{(tmp_path / f'{n}.log').read_text()[-1500:]}" for n in procs)

    def closed() -> list[dict]:
        r = httpx.get(f"{url}/api/v1/candles/ETHUSDT", params={"interval": "1s", "limit": 1000}, timeout=5)
        return [c for c in r.json()["candles"] if c["closed"]] if r.status_code == 200 else []

    async def live_candle() -> dict:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": "SOLUSDT", "interval": "1s"}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if msg["type"] == "candle":
                    return msg

    try:
        deadline = time.monotonic() + 60
        got: list[dict] = []
        while time.monotonic() < deadline and len(got) < 3:
            for name, p in procs.items():
                assert p.poll() is None, f"{name} exited\n{logs()}"
            with contextlib.suppress(httpx.HTTPError):
                got = closed()
            time.sleep(0.3)
        assert len(got) >= 3, logs()
        times = [c["open_time"] for c in got]
        assert times == sorted(times) and len(set(times)) == len(times)
        msg = asyncio.run(live_candle())
        assert msg["symbol"] == "SOLUSDT" and msg["interval"] == "1s"
        source = httpx.get(f"{url}/health", timeout=5).json()["source"]
        assert source["name"] == "bus" and source["live_candles_from"].startswith(fanout)
        # the roles without an API answer /health and /metrics on their metrics port
        health = httpx.get(f"http://127.0.0.1:{process_port}/health", timeout=5).json()
        assert health["role"] == "process" and health["status"] == "ok"
        assert health["instance"]["starts"] == 1 and health["instance"]["id"].endswith("-process-0")
        assert health["bus"]["committed_ms"] > 0 and health["bus"]["lag"] >= 0 and health["bus"]["position"]
        assert health["fold"]["trades"] > 0 and health["fold"]["candles_written"] > 0
        metrics = httpx.get(f"http://127.0.0.1:{process_port}/metrics", timeout=5).text
        assert "coincast_kafka_committed_time_seconds" in metrics and "coincast_kafka_consumer_lag" in metrics
        ingest = httpx.get(f"http://127.0.0.1:{ingest_port}/health", timeout=5).json()
        assert ingest["role"] == "ingest" and isinstance(ingest["bus"]["producer_resets"], int)
        assert ingest["source"]["messages"] >= 0 and "reconnects" in ingest["source"]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        stuck = []
        for name, p in procs.items():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                stuck.append(name)
        for p in procs.values():  # never leave a process behind, whatever failed
            if p.poll() is None:
                p.kill()
                p.wait(10)
        assert not stuck, f"{stuck} did not stop on SIGTERM\n{logs()}"
        codes = {name: p.returncode for name, p in procs.items()}
        assert set(codes.values()) == {0}, f"exit codes {codes}\n{logs()}"
