"""The analytics API on hand-made candles: lake first, store as fallback, numbers checked by hand.

BTCUSDT's daily closes rise to 121 and fall to 96.8: a maximum drawdown of exactly 20 %.
"""

from __future__ import annotations

import io
import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from coincast.analytics.service import AnalyticsQuery, AnalyticsService
from coincast.api.app import Services, create_app
from coincast.api.ws import Hub
from coincast.domain import Candle, Interval, ManualClock
from coincast.lake.parquet import open_lake
from coincast.settings import Settings, StreamSettings
from coincast.sources.base import SourceHealth
from coincast.store.duckdb import DuckDBStore
from coincast.stream.live import LiveState

DAY_MS = Interval.D1.ms
HOUR_MS = Interval.H1.ms
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
BTC = [100.0, 110.0, 121.0, 96.8, 105.0, 108.0, 102.0, 115.0, 120.0, 118.0]
ETH = [50.0, 49.0, 51.0, 52.0, 50.5, 53.0, 54.0, 52.0, 55.0, 56.0]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def candles(symbol: str, interval: Interval, closes: list[float], start_ms: int = T0) -> list[Candle]:
    """Candles whose open is the previous close (the first opens at its close)."""
    out = []
    for i, close in enumerate(closes):
        open_ = closes[i - 1] if i else close
        out.append(
            Candle(
                symbol,
                interval,
                start_ms + i * interval.ms,
                open_,
                max(open_, close) * 1.01,
                min(open_, close) * 0.99,
                close,
                10.0 + i,
                0.0,
                0,
                0.0,
                0.0,
            )
        )
    return out


def sol_closes(n: int) -> list[float]:
    rng = np.random.default_rng(7)
    return list(20.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n))))


def make_services(tmp_path: Path, store: DuckDBStore) -> Services:
    settings = Settings(data_dir=tmp_path, symbols=SYMBOLS, stream=StreamSettings(intervals=(Interval.H1,)))
    hub = Hub(settings.symbols, settings.stream.intervals, list)
    return Services(settings, store, LiveState(Interval.H1), hub, SourceHealth("sim", simulated=True))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DuckDBStore]:
    lake = open_lake(str(tmp_path / "lake"))
    lake.write_candles(candles("BTCUSDT", Interval.D1, BTC) + candles("ETHUSDT", Interval.D1, ETH))
    s = DuckDBStore.open(":memory:")
    await s.upsert(candles("SOLUSDT", Interval.H1, sol_closes(96)))  # 4 UTC days, only in the store
    await s.upsert(candles("ETHUSDT", Interval.H1, [50.0, 50.5, 51.0]))  # 3 hours: not enough
    yield s
    await s.close()


@pytest.fixture
async def client(tmp_path: Path, store: DuckDBStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(make_services(tmp_path, store)))
    async with httpx.AsyncClient(transport=transport, base_url="http://coincast.test") as c:
        yield c


def daily_returns(closes: list[float]) -> np.ndarray:
    c = np.array(closes)
    return c[1:] / c[:-1] - 1.0


async def test_lake_report_has_hand_checked_kpis(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/analytics", params={"interval": "1d"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "lake" and body["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert body["missing"] == ["SOLUSDT"] and any("SOLUSDT" in n for n in body["notes"])
    assert body["rows"] == {"BTCUSDT": 10, "ETHUSDT": 10} and body["rows_total"] == 20
    assert body["window"] == {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-10T00:00:00+00:00"}
    kpi = {k["symbol"]: k for k in body["kpis"]}
    btc = kpi["BTCUSDT"]
    assert btc["max_drawdown"] == pytest.approx(-0.2)
    assert btc["drawdown_peak"].startswith("2024-01-03") and btc["drawdown_trough"].startswith("2024-01-04")
    assert btc["period_return"] == pytest.approx(0.18)
    assert btc["avg_price"] == pytest.approx(np.mean(BTC))
    assert btc["avg_volume"] == pytest.approx(14.5)
    ret = daily_returns(BTC)
    assert btc["ann_volatility"] == pytest.approx(np.std(ret, ddof=1) * math.sqrt(365))
    assert btc["var_95_hist"] == pytest.approx(-np.quantile(ret, 0.05))
    assert btc["sharpe"] == pytest.approx(ret.mean() / ret.std(ddof=1) * math.sqrt(365))
    for key in ("cvar_95_hist", "var_95_param", "cvar_95_param", "sortino"):
        assert isinstance(btc[key], float), key
    corr = body["correlation"]
    assert corr["symbols"] == ["BTCUSDT", "ETHUSDT"]
    expected = np.corrcoef(ret, daily_returns(ETH))[0, 1]
    assert np.array(corr["matrix"]) == pytest.approx(np.array([[1.0, expected], [expected, 1.0]]))
    dd = body["drawdown"]["BTCUSDT"]
    assert dd["t"] == [T0 + i * DAY_MS for i in range(10)]
    assert dd["dd"] == pytest.approx(
        [0, 0, 0, -0.2, 105 / 121 - 1, 108 / 121 - 1, 102 / 121 - 1, 115 / 121 - 1, 120 / 121 - 1, 118 / 121 - 1],
        abs=1e-6,  # curves are rounded to 6 decimals
    )
    assert {p["strategy"] for p in body["portfolios"]} >= {"min_variance", "risk_parity", "max_sharpe"}
    for p in body["portfolios"]:
        assert sum(p["weights"].values()) == pytest.approx(1.0) and set(p["weights"]) == {"BTCUSDT", "ETHUSDT"}
        assert p["volatility"] > 0
    weeks = [(w["symbol"], w["period"][:10]) for w in body["weekly"] if w["symbol"] == "BTCUSDT"]
    assert weeks == [("BTCUSDT", "2024-01-01"), ("BTCUSDT", "2024-01-08")]  # 2024-01-01 is a Monday
    assert [m["return"] for m in body["monthly"] if m["symbol"] == "BTCUSDT"] == [pytest.approx(0.18)]


async def test_period_keeps_the_trailing_window(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/analytics", params={"interval": "1d", "period": "3D"})).json()
    assert body["period"] == "3d" and body["rows"] == {"BTCUSDT": 3, "ETHUSDT": 3}
    assert body["window"]["start"].startswith("2024-01-08")
    btc = next(k for k in body["kpis"] if k["symbol"] == "BTCUSDT")
    assert btc["max_drawdown"] == pytest.approx(118 / 120 - 1)
    assert btc["period_return"] == pytest.approx(118 / 102 - 1)  # the first open is the close before


async def test_store_is_the_fallback_when_the_lake_has_none_of_the_symbols(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/analytics", params={"interval": "1h", "symbols": "solusdt"})
    assert r.status_code == 200, r.text
    body = r.json()
    closes = sol_closes(96)
    assert body["source"] == "store" and body["symbols"] == ["SOLUSDT"] and body["rows"] == {"SOLUSDT": 96}
    kpi = body["kpis"][0]
    assert kpi["avg_price"] == pytest.approx(np.mean(closes)) and kpi["last_price"] == pytest.approx(closes[-1])
    c = np.array(closes)
    assert kpi["max_drawdown"] == pytest.approx(float(np.min(c / np.maximum.accumulate(c) - 1)))
    assert len(body["drawdown"]["SOLUSDT"]["t"]) == 96
    assert body["portfolios"] == [] and any("portfolios skipped" in n for n in body["notes"])


async def test_no_data_and_not_enough_data_say_what_to_run(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/analytics", params={"interval": "1h", "symbols": "BTCUSDT"})
    assert r.status_code == 404 and r.json()["error"] == "no_data"
    assert "coincast backfill" in r.json()["detail"] and "coincast import" in r.json()["detail"]
    r = await client.get("/api/v1/analytics", params={"interval": "1h", "symbols": "ETHUSDT"})
    assert r.status_code == 409 and r.json()["error"] == "not_enough_data"
    assert "3 1h candles" in r.json()["detail"] and "coincast backfill" in r.json()["detail"]
    # the dashboard asks for an answer it can show: 200, available false, the same reason
    r = await client.get("/api/v1/analytics", params={"interval": "1h", "symbols": "ETHUSDT", "missing_ok": "true"})
    assert r.status_code == 200 and r.json()["available"] is False and r.json()["error"] == "not_enough_data"
    r = await client.get("/api/v1/analytics", params={"interval": "1h", "symbols": "BTCUSDT", "missing_ok": "1"})
    assert r.status_code == 200 and r.json()["error"] == "no_data" and "coincast import" in r.json()["detail"]
    r = await client.get("/api/v1/analytics", params={"interval": "1d", "missing_ok": "true"})
    assert r.status_code == 200 and r.json()["available"] is True and len(r.json()["kpis"]) == 2


@pytest.mark.parametrize(
    ("params", "status", "code", "text"),
    [
        ({"period": "7x"}, 422, "invalid_period", "30d"),
        ({"period": "0d"}, 422, "invalid_period", "'0d'"),
        ({"interval": "1m"}, 422, "invalid_interval", "1h or 1d"),
        ({"interval": "7q"}, 422, "invalid_interval", "7q"),
        ({"symbols": "DOGEUSDT"}, 404, "unknown_symbol", "DOGEUSDT"),
        ({"symbols": "BTC$"}, 404, "unknown_symbol", "BTC$"),
        ({"symbols": " , "}, 404, "unknown_symbol", "no symbol"),
    ],
)
async def test_bad_requests_are_named(
    client: httpx.AsyncClient, params: dict[str, str], status: int, code: str, text: str
) -> None:
    for path in ("/api/v1/analytics", "/api/v1/analytics.csv"):
        r = await client.get(path, params=params)
        assert r.status_code == status, (path, r.text)
        assert r.json()["error"] == code and text in r.json()["detail"]


async def test_csv_downloads(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/analytics.csv", params={"table": "kpis", "interval": "1d"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="coincast_kpis_1d_all.csv"'
    kpis = pd.read_csv(io.StringIO(r.text)).set_index("symbol")
    assert list(kpis.index) == ["BTCUSDT", "ETHUSDT"]
    assert kpis.loc["BTCUSDT", "max_drawdown"] == pytest.approx(-0.2)
    corr = pd.read_csv(
        io.StringIO((await client.get("/api/v1/analytics.csv", params={"table": "correlation", "interval": "1d"})).text)
    ).set_index("symbol")
    assert corr.loc["BTCUSDT", "BTCUSDT"] == pytest.approx(1.0) and list(corr.columns) == ["BTCUSDT", "ETHUSDT"]
    dd = pd.read_csv(
        io.StringIO((await client.get("/api/v1/analytics.csv", params={"table": "drawdown", "interval": "1d"})).text)
    )
    assert len(dd) == 20 and dd["drawdown"].min() == pytest.approx(-0.2)
    weights = pd.read_csv(
        io.StringIO((await client.get("/api/v1/analytics.csv", params={"table": "WEIGHTS", "interval": "1d"})).text)
    )
    assert weights.groupby("strategy")["weight"].sum().to_numpy() == pytest.approx(1.0)
    r = await client.get("/api/v1/analytics.csv", params={"table": "nope", "interval": "1d"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_table" and "kpis" in r.json()["detail"]


async def test_report_is_stored_and_served_after_a_restart_until_it_expires(tmp_path: Path, store: DuckDBStore) -> None:
    clock = ManualClock(T0 + 30 * DAY_MS)
    query = AnalyticsQuery("all", Interval.D1, ("BTCUSDT", "ETHUSDT"))
    lake_url = str(tmp_path / "lake")
    first = await AnalyticsService(store, lake_url, tmp_path, ttl_s=60, clock=clock).report(query)
    folder = tmp_path / "analytics" / query.key
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "report.json",
            "kpis.csv",
            "weekly.csv",
            "monthly.csv",
            "correlation.csv",
            "portfolios.csv",
            "weights.csv",
            "drawdown.csv",
        ]
    )
    # new data arrives; a restarted service serves the stored report while it is fresh
    open_lake(lake_url).write_candles(candles("BTCUSDT", Interval.D1, [118.0, 90.0], T0 + 9 * DAY_MS))
    clock.advance(30_000)
    restarted = AnalyticsService(store, lake_url, tmp_path, ttl_s=60, clock=clock)
    again = await restarted.report(query)
    assert again.payload == first.payload and again.csv == first.csv
    clock.advance(31_000)  # now 61 s old: computed afresh from the new data
    fresh = await restarted.report(query)
    assert fresh.computed_ms == clock.now_ms() and fresh.payload["rows"]["BTCUSDT"] == 11
    btc = next(k for k in fresh.payload["kpis"] if k["symbol"] == "BTCUSDT")
    assert btc["max_drawdown"] == pytest.approx(90 / 121 - 1)


async def test_concurrent_requests_compute_once(tmp_path: Path, store: DuckDBStore) -> None:
    import asyncio

    service = AnalyticsService(store, str(tmp_path / "lake"), tmp_path, clock=ManualClock(T0 + 30 * DAY_MS))
    query = AnalyticsQuery("all", Interval.D1, ("BTCUSDT",))
    reports = await asyncio.gather(*(service.report(query) for _ in range(4)))
    assert all(r is reports[0] for r in reports)


def test_long_drawdown_curves_keep_the_deepest_point_of_each_day() -> None:
    from coincast.analytics.service import CURVE_POINTS, drawdown_curves

    rng = np.random.default_rng(3)
    n = CURVE_POINTS + 500
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    times = pd.to_datetime(T0 + np.arange(n) * HOUR_MS, unit="ms", utc=True)
    window = pd.DataFrame({"symbol": "BTCUSDT", "open_time": times, "close": close})
    curve = drawdown_curves(window, Interval.H1)["BTCUSDT"]
    full = close / np.maximum.accumulate(close) - 1
    assert len(curve["t"]) == math.ceil(n / 24) and curve["t"][0] == T0 and curve["t"][1] == T0 + DAY_MS
    assert min(curve["dd"]) == pytest.approx(full.min(), abs=1e-6)
    assert curve["dd"][1] == pytest.approx(full[24:48].min(), abs=1e-6)
    short = drawdown_curves(window.iloc[:100], Interval.H1)["BTCUSDT"]
    assert len(short["t"]) == 100 and short["dd"] == pytest.approx(full[:100], abs=1e-6)


async def test_a_backfilled_coin_the_stream_does_not_follow_can_be_asked_for(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    r = await client.get("/api/v1/analytics", params={"interval": "1d", "symbols": "ADAUSDT"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_symbol"
    open_lake(str(tmp_path / "lake")).write_candles(candles("ADAUSDT", Interval.D1, ETH))
    r = await client.get("/api/v1/analytics", params={"interval": "1d", "symbols": "adausdt,BTCUSDT"})
    assert r.status_code == 200 and r.json()["symbols"] == ["ADAUSDT", "BTCUSDT"] and r.json()["source"] == "lake"
