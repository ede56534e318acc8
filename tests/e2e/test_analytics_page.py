"""The Analytics page in headless Chromium against `coincast up --source sim` with a real-data lake.

The lake holds the last 60 days of the recorded hourly klines of the ten coins (written with the
lake API before the server starts); the page must show them all, agree with the API, fall back
to an empty state saying how history arrives when there is not enough data, and draw in both
themes without console errors. Screenshots: artifacts/e2e/analytics.png (dark) and
analytics-light.png.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.e2e.conftest import ARTIFACTS, Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAYS = 60


@pytest.fixture(scope="module")
def lake_server(chromium_path: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`coincast up --source sim` whose lake holds a real 60-day slice of klines_1h.parquet."""
    from coincast.lake.parquet import open_lake

    root = tmp_path_factory.mktemp("coincast-analytics")
    klines = pd.read_parquet(shared_data / "klines_1h.parquet")
    recent = klines[klines["open_time"] > klines["open_time"].max() - pd.Timedelta(days=DAYS)]
    assert open_lake(str(root / "lake")).write(recent, "1h") == len(recent)
    with running_server(root, {"COINCAST_LAKE__URL": f"file://{root / 'lake'}"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(lake_server: Server, browser: Any) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(viewport={"width": 1440, "height": 1900}, color_scheme="dark")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text} {m.location}"))
    pg.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    pg.goto(f"{lake_server.url}/#/analytics")
    try:
        yield pg, errors
    finally:
        context.close()


def kpi_rows(pg: Any) -> list[list[str]]:
    return [list(r) for r in pg.eval_on_selector_all(
        "#an-kpis tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))"
    )]  # fmt: skip


def test_page_shows_the_lake_analytics_of_all_ten_coins(page: tuple[Any, list[str]], lake_server: Server) -> None:
    pg, errors = page
    pg.wait_for_function("document.querySelectorAll('#an-kpis tbody tr').length === 10")
    api = lake_server.get("/api/v1/analytics", period="all", interval="1h")
    assert api["source"] == "lake" and len(api["symbols"]) == 10
    assert pg.locator("#page-market").is_hidden() and pg.locator("#page-analytics").is_visible()
    assert pg.locator(".nav-link[data-page='analytics']").get_attribute("aria-current") == "page"
    meta = pg.locator("#an-meta").inner_text()
    assert "History lake" in meta and "10 coins" in meta and f"{api['rows_total']:,} 1h candles" in meta
    # KPI table agrees with the API (rounded as shown)
    rows = {r[0].split()[0]: r for r in kpi_rows(pg)}
    btc = next(k for k in api["kpis"] if k["symbol"] == "BTCUSDT")
    assert rows["BTCUSDT"][7] == f"{btc['ann_volatility'] * 100:.1f}%"
    assert rows["BTCUSDT"][8] == f"{btc['max_drawdown'] * 100:.1f}%"
    # heatmap and the other charts are drawn, one row/series per coin
    charts = pg.evaluate("""() => Object.fromEntries(['an-corr', 'an-risk', 'an-dd', 'an-weights', 'an-monthly']
        .map((id) => { const gd = document.getElementById(id); return [id, gd.data ? gd.data.map((t) => ({
            type: t.type, n: (t.z || t.y || []).length })) : null]; }))""")
    assert charts["an-corr"] == [{"type": "heatmap", "n": 10}]
    assert pg.locator("#an-corr .hm image, #an-corr .heatmaplayer").count() >= 1
    assert charts["an-risk"][0]["n"] == 10 and len(charts["an-dd"]) == 10 and len(charts["an-weights"]) == 10
    assert charts["an-monthly"] == [{"type": "heatmap", "n": 10}]
    assert pg.locator("#an-port tbody tr").count() == len(api["portfolios"]) >= 3
    assert errors == []


def test_sorting_csv_links_and_empty_state(page: tuple[Any, list[str]], lake_server: Server) -> None:
    pg, errors = page
    pg.click("#an-kpis th[data-key='ann_volatility'] button")
    vols = [float(r[7].rstrip("%")) for r in kpi_rows(pg)]
    assert vols == sorted(vols, reverse=True)
    assert pg.get_attribute("#an-kpis th[data-key='ann_volatility']", "aria-sort") == "descending"
    href = pg.get_attribute(".an-csv[data-table='kpis']", "href")
    r = httpx.get(lake_server.url + href, timeout=10)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert len(pd.read_csv(io.StringIO(r.text))) == 10
    # the lake has no daily candles and the simulator's store too few (a real lake is never mixed with
    # simulated history): the page says what happens, in its own words
    pg.click("#an-intervals .seg-btn[data-value='1d']")
    pg.locator("#an-empty").wait_for(state="visible")
    assert pg.locator("#an-grid").is_hidden()
    empty = pg.locator("#an-empty").inner_text()
    assert "downloads the history in the background" in empty and "--interval" not in empty
    pg.screenshot(path=str(ARTIFACTS / "analytics-empty.png"))
    pg.click("#an-intervals .seg-btn[data-value='1h']")
    pg.wait_for_function("document.querySelectorAll('#an-kpis tbody tr').length === 10")
    pg.click("#an-periods .seg-btn[data-value='30d']")
    pg.wait_for_function("document.getElementById('an-kpi-sub').innerText.startsWith('last 30d')")
    api = lake_server.get("/api/v1/analytics", period="30d", interval="1h")
    assert api["rows_total"] == 10 * 30 * 24
    assert f"{api['rows_total']:,} 1h candles" in pg.locator("#an-meta").inner_text()
    assert errors == []


def test_both_themes_render_and_market_page_comes_back(page: tuple[Any, list[str]]) -> None:
    pg, errors = page
    pg.click("#an-periods .seg-btn[data-value='all']")
    pg.wait_for_function(
        "!document.getElementById('page-analytics').classList.contains('loading')"
        " && document.getElementById('an-kpi-sub').innerText.startsWith('whole')"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "analytics.png"))
    pg.click("#theme-toggle")
    pg.wait_for_function("document.getElementById('an-corr').layout.paper_bgcolor === '#ffffff'")
    pg.screenshot(path=str(ARTIFACTS / "analytics-light.png"))
    pg.click("#theme-toggle")
    pg.set_viewport_size({"width": 820, "height": 1400})  # one column; the KPI table scrolls sideways
    pg.wait_for_function("document.getElementById('an-corr').getBoundingClientRect().width > 700")
    assert pg.evaluate("document.querySelector('.an-table-wrap').scrollWidth > 780")
    pg.screenshot(path=str(ARTIFACTS / "analytics-narrow.png"))
    pg.set_viewport_size({"width": 1440, "height": 1900})
    pg.click(".nav-link[data-page='market']")
    pg.locator("#page-market").wait_for(state="visible")
    pg.wait_for_function("/^#[A-Z0-9]+\\/\\w+$/.test(location.hash) && document.getElementById('chart').data")
    assert pg.locator("#page-analytics").is_hidden()
    assert errors == []
