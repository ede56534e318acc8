"""Hardened edges of a running `coincast up`: bad input, floods, big bodies and WebSocket abuse.

Every answer is the one error body ``{"error", "detail"}`` with no exception text, URL or absolute
path; nothing answers 500. schemathesis fuzzes every operation of the served OpenAPI spec.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from tests.integration.conftest import UpProcess, coincast_up

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "edge-test-key-0123456789"
LIMITS = {
    "COINCAST_API__API_KEY": KEY,
    "COINCAST_API__RATE_LIMIT_PER_MINUTE": "1000000",
    "COINCAST_API__RATE_LIMIT_STRICT_PER_MINUTE": "1000000",
    "COINCAST_API__MAX_BODY_BYTES": "8192",
    "COINCAST_API__WS_MAX_FRAME_BYTES": "2048",
    "COINCAST_API__WS_MAX_CLIENTS": "3",
    "COINCAST_API__WS_MAX_SUBSCRIPTIONS": "2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    with coincast_up(tmp_path_factory.mktemp("edges"), "--source", "sim", env=LIMITS) as up:
        yield up


def assert_error_body(r: httpx.Response, status: int, data_dir: Path | None = None) -> dict[str, str]:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str), body
    assert "Traceback" not in body["detail"] and "http://" not in body["detail"], body
    if data_dir is not None:
        assert str(data_dir.resolve()) not in r.text
    return body


BAD_GETS = [
    ("/api/v1/candles/BTCUSDT?start=%C2%B2", 422, "invalid_time_range"),  # a superscript digit
    ("/api/v1/candles/BTCUSDT?start=%D9%A1%D9%A2%D9%A3", 422, "invalid_time_range"),  # Arabic-Indic digits
    ("/api/v1/candles/BTCUSDT?start=" + "9" * 5000, 422, "invalid_time_range"),
    ("/api/v1/candles/BTCUSDT?end=0001-01-01T00:00:00%2B14:00", 422, "invalid_time_range"),
    ("/api/v1/candles/NOPE%00?interval=1m", 404, "unknown_symbol"),
    ("/api/v1/candles/BTCUSDT?interval=7m", 422, "invalid_interval"),
    ("/api/v1/candles/BTCUSDT?limit=abc", 422, "invalid_request"),
    ("/api/v1/models/" + "x" * 5000, 404, "unknown_model"),
    ("/api/v1/models/.hidden", 404, "unknown_model"),
    ("/no/such/route", 404, "not_found"),
]


@pytest.mark.parametrize(("path", "status", "code"), BAD_GETS)
def test_bad_get_gets_one_clear_error(server: UpProcess, path: str, status: int, code: str) -> None:
    r = httpx.get(server.url + path, timeout=10)
    assert assert_error_body(r, status)["error"] == code


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"path": "a\x00b.parquet"}, 422),
        ({"path": "p" * 5000}, 422),
        ({"path": "/".join(["d" * 300] * 3)}, 404),  # each name too long for the file system
        ({"path": "../../etc/passwd"}, 422),
        ({"path": "x.parquet", "symbols": ["not a symbol!"]}, 422),
        ({"symbol": "BTC USDT $$", "model": "drift"}, 422),
        ({"symbol": "BTCUSDT"}, 422),
    ],
)
def test_bad_backtest_requests(server: UpProcess, body: dict[str, object], status: int) -> None:
    r = httpx.post(server.url + "/api/v1/backtest", json=body, timeout=10)
    assert_error_body(r, status)


def test_malformed_json_wrong_method_and_big_body(server: UpProcess) -> None:
    r = httpx.post(server.url + "/api/v1/backtest", content=b"{not json", timeout=10,
                   headers={"content-type": "application/json"})
    assert_error_body(r, 422)
    r = httpx.delete(server.url + "/api/v1/train", timeout=10)
    assert assert_error_body(r, 405)["error"] == "method_not_allowed"
    assert set(r.headers["allow"].split(", ")) >= {"GET", "POST"}  # both routes at that path
    r = httpx.post(server.url + "/api/v1/assistant/ask", json={"question": "x" * 20_000}, timeout=10)
    assert assert_error_body(r, 413)["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold on the stream too
        yield b'{"question": "'
        for _ in range(200):
            yield b"y" * 100
        yield b'"}'

    r = httpx.post(server.url + "/api/v1/assistant/ask", content=chunks(), timeout=10,
                   headers={"content-type": "application/json"})
    assert assert_error_body(r, 413)["error"] == "payload_too_large"


def test_backtest_files_hide_the_data_directory(server: UpProcess) -> None:
    r = httpx.get(server.url + "/api/v1/backtest/files", timeout=10)
    assert r.status_code == 200 and "data_dir" not in r.json()
    assert str(server.log.parent.resolve()) not in r.text


def test_a_damaged_predictions_file_names_no_absolute_path(server: UpProcess) -> None:
    data_dir = server.log.parent
    (data_dir / "backtests").mkdir(exist_ok=True)
    (data_dir / "backtests" / "damaged.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    r = httpx.post(server.url + "/api/v1/backtest", json={"path": "backtests/damaged.parquet"}, timeout=10)
    body = assert_error_body(r, 422, data_dir)
    assert "damaged.parquet" in body["detail"]


def test_websocket_limits(server: UpProcess) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws"

    async def run() -> None:
        async with websockets.connect(url, open_timeout=10) as ws:
            await ws.send(b"\x00\x01binary")
            got = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert got["type"] == "error" and got["error"] == "binary_frame", got
            for sym in ("BTCUSDT", "ETHUSDT"):
                await ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": sym}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
            await ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": "SOLUSDT"}))
            while (got := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] == "candle":
                pass
            assert got["type"] == "error" and "too many subscriptions" in got["detail"], got
            await ws.send(json.dumps({"op": "subscribe", "pad": "z" * 4000}))  # over the 2 KiB frame limit
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big

        others = [await websockets.connect(url, open_timeout=10) for _ in range(3)]
        try:
            async with websockets.connect(url, open_timeout=10) as extra:
                got = json.loads(await asyncio.wait_for(extra.recv(), 5))
                assert got["error"] == "too_many_clients", got
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(extra.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        finally:
            for ws in others:
                await ws.close()

    asyncio.run(run())


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    env = {"COINCAST_API__API_KEY": KEY, "COINCAST_API__RATE_LIMIT_PER_MINUTE": "40",
           "COINCAST_API__RATE_LIMIT_STRICT_PER_MINUTE": "5"}
    with coincast_up(tmp_path, "--source", "sim", env=env) as up, httpx.Client(base_url=up.url, timeout=10) as c:
        codes = [c.get("/api/v1/symbols").status_code for _ in range(60)]
        assert codes[:40] == [200] * 40 and set(codes[40:]) == {429}, codes
        r = c.get("/api/v1/tickers")
        assert assert_error_body(r, 429)["error"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert c.get("/health").status_code == 200  # probes are not counted
        wrong = [c.post("/api/v1/models/x/promote", headers={"X-API-Key": "wrong"}).status_code for _ in range(8)]
        assert wrong[:5] == [403] * 5 and set(wrong[5:]) == {429}, wrong  # the stricter limit


def test_schemathesis_finds_no_server_error_or_schema_violation(server: UpProcess, tmp_path: Path) -> None:
    """Every operation, bounded examples and time: 0 server errors, 0 response-schema violations."""
    st = Path(sys.executable).with_name("st")
    report = tmp_path / "st.ndjson"
    proc = subprocess.run(
        [str(st), "run", f"{server.url}/openapi.json", "--max-examples", "8", "--max-time", "100", "--seed", "7",
         "--phases", "examples,coverage,fuzzing,stateful", "--checks", "all",
         # positive/negative data checks are about how strict the schema is, not about these guarantees
         "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
         "--header", f"X-API-Key: {KEY}", "--continue-on-failure",
         "--report", "ndjson", "--report-ndjson-path", str(report)],
        capture_output=True, text=True, timeout=400, env={**os.environ, "NO_COLOR": "1"}, cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "Tested: " in out and " passed" in out, out[-3000:]
    assert "Server error" not in out and "Response violates schema" not in out, out[-3000:]
