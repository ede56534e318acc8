"""The live dashboard in real headless Chromium against a real `coincast up --source sim`.

One server and one page for the module; the tests run in file order and the last one checks
what the page did over the whole session (console errors, hosts contacted) and saves the
screenshot to artifacts/e2e/dashboard.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import ARTIFACTS, Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A consistent snapshot of the chart: wait until no render is pending, so the candle arrays and
# the overlay traces describe the same data.
SNAPSHOT = """() => new Promise((resolve) => {
  const take = () => {
    const chart = window.coincast && window.coincast.chart;
    const gd = document.getElementById('chart');
    if (!chart || chart.frame || !gd || !gd.data) { requestAnimationFrame(take); return; }
    const byName = Object.fromEntries(gd.data.map((t) => [t.name, t]));
    const c = gd.data[0];
    resolve({
      symbol: window.coincast.state.symbol, interval: window.coincast.state.interval,
      loading: window.coincast.state.loading, name: c.name,
      x: Array.from(c.x), open: Array.from(c.open), high: Array.from(c.high), low: Array.from(c.low),
      close: Array.from(c.close), volume: Array.from(gd.data[1].y),
      ema: {visible: byName['EMA 20'].visible, y: Array.from(byName['EMA 20'].y)},
      bbUpper: {visible: byName['BB upper'].visible, y: Array.from(byName['BB upper'].y)},
      bbMiddle: {visible: byName['BB middle'].visible, y: Array.from(byName['BB middle'].y)},
      bbLower: {visible: byName['BB lower'].visible, y: Array.from(byName['BB lower'].y)},
    });
  };
  take();
})"""

SHOWING = """([symbol, interval, n]) => {
  const s = window.coincast && window.coincast.state;
  const gd = document.getElementById('chart');
  return Boolean(s && s.symbol === symbol && s.interval === interval && !s.loading && gd && gd.data
    && gd.data[0].name === symbol && gd.data[0].x.length >= n);
}"""


@dataclass
class Dashboard:
    page: Any
    server: Server
    console_errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return dict(self.page.evaluate(SNAPSHOT))

    def wait_showing(self, symbol: str, interval: str, n: int = 1, timeout: float = 15_000) -> dict[str, Any]:
        self.page.wait_for_function(SHOWING, arg=[symbol, interval, n], timeout=timeout)
        return self.snapshot()


@pytest.fixture(scope="module")
def dashboard(server: Server, browser: Any) -> Iterator[Dashboard]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(15_000)
    d = Dashboard(page, server)
    page.on("console", lambda m: m.type == "error" and d.console_errors.append(f"console: {m.text} {m.location}"))
    page.on("pageerror", lambda e: d.console_errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: d.urls.append(r.url))
    page.on("websocket", lambda ws: d.urls.append(ws.url))
    page.goto(f"{server.url}/#BTCUSDT/1s")
    try:
        yield d
    finally:
        context.close()


def rest_candles(server: Server, symbol: str, interval: str) -> list[dict[str, Any]]:
    body = server.get(f"/api/v1/candles/{symbol}", interval=interval, limit=500)
    assert body["symbol"] == symbol and body["interval"] == interval
    return list(body["candles"])


def assert_matches_api(chart: dict[str, Any], candles: list[dict[str, Any]], min_common: int) -> None:
    """Every closed candle the API serves that the chart also shows is drawn with the same values."""
    closed = {c["open_time"]: c for c in candles if c["closed"]}
    common = [i for i, t in enumerate(chart["x"]) if t in closed]
    assert len(common) >= min_common, (len(common), len(chart["x"]), len(closed))
    for i in common:
        c = closed[chart["x"][i]]
        got = [chart[k][i] for k in ("open", "high", "low", "close", "volume")]
        assert got == pytest.approx([c[k] for k in ("open", "high", "low", "close", "volume")], rel=1e-12)
    assert chart["x"] == sorted(set(chart["x"])), "candles out of order or repeated"


def ema_reference(close: np.ndarray, period: int) -> np.ndarray:
    """EMA seeded with the SMA of the first `period` values (TA-Lib), via pandas."""
    out = np.full(len(close), np.nan)
    if len(close) >= period:
        seeded = pd.Series(close[period - 1 :].copy())
        seeded.iloc[0] = close[:period].mean()
        out[period - 1 :] = seeded.ewm(span=period, adjust=False).mean().to_numpy()
    return out


def bollinger_reference(close: np.ndarray, period: int, mult: float) -> tuple[np.ndarray, ...]:
    s = pd.Series(close)
    mid = s.rolling(period).mean()
    sd = s.rolling(period).std(ddof=0)
    return mid.to_numpy(), (mid + mult * sd).to_numpy(), (mid - mult * sd).to_numpy()


def as_array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def test_chart_draws_the_candles_the_api_serves(dashboard: Dashboard) -> None:
    page, server = dashboard.page, dashboard.server
    # the page may have opened before the first candle: it fills from the WebSocket
    dashboard.wait_showing("BTCUSDT", "1s", n=6, timeout=25_000)
    server.wait_for(
        lambda: sum(c["closed"] for c in rest_candles(server, "BTCUSDT", "1s")) >= 4,
        timeout=15,
        what="4 closed candles",
    )
    chart = dashboard.snapshot()
    assert_matches_api(chart, rest_candles(server, "BTCUSDT", "1s"), min_common=3)
    assert all(t % 1000 == 0 for t in chart["x"])
    n = len(chart["x"])
    # really drawn: an SVG body per candle and a bar per volume
    assert page.locator("#chart g.trace.boxes path.box").count() >= n
    assert page.locator("#chart g.trace.bars path").count() >= n
    # the page says plainly that the market is simulated, and that it is live
    banner = page.locator("#sim-banner")
    banner.wait_for(state="visible")
    assert "SIMULATED MARKET" in banner.inner_text()
    page.wait_for_selector("#conn[data-state='live']")
    assert page.locator("#conn").inner_text().strip() == "Live"
    # market overview: all ten symbols with a price and a 24h change
    assert page.locator("#markets tbody tr").count() == 10
    page.wait_for_function(
        "() => [...document.querySelectorAll('#markets tbody tr')].every("
        "tr => /\\d/.test(tr.querySelector('.price').textContent) && /%$/.test(tr.querySelector('.chg').textContent))"
    )
    assert page.locator("#markets tr.active").get_attribute("data-symbol") == "BTCUSDT"
    assert re.fullmatch(r"[\d,]+\.\d{2}", page.locator("#last-price").inner_text())


def test_live_updates_change_the_chart_in_place(dashboard: Dashboard) -> None:
    page = dashboard.page
    before = dashboard.snapshot()
    # mark the plot's SVG: a chart rebuilt from scratch would lose the mark
    page.evaluate("() => { document.querySelector('#chart .main-svg').dataset.e2eMark = 'kept'; }")
    last_open = before["x"][-1]
    # 1s candles: within a few seconds a newer candle must have been appended from the WebSocket
    page.wait_for_function(
        "(t) => { const x = document.getElementById('chart').data[0].x; return x[x.length - 1] > t; }",
        arg=last_open,
        timeout=10_000,
    )
    after = dashboard.snapshot()
    assert after["x"][-1] > last_open
    assert page.locator("#chart .main-svg[data-e2e-mark='kept']").count() == 1
    # the candle that was live before closes, and the chart ends with exactly the API's final values
    server = dashboard.server

    def closed_version() -> dict[str, Any] | None:
        candles = rest_candles(server, "BTCUSDT", "1s")
        return next((c for c in candles if c["open_time"] == last_open and c["closed"]), None)

    final = server.wait_for(closed_version, timeout=10, what=f"candle {last_open} to close")
    page.wait_for_function(
        """([t, want]) => {
          const d = document.getElementById('chart').data;
          const i = d[0].x.indexOf(t);
          const near = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
          return i >= 0 && near(d[0].open[i], want.open) && near(d[0].high[i], want.high)
            && near(d[0].low[i], want.low) && near(d[0].close[i], want.close) && near(d[1].y[i], want.volume);
        }""",
        arg=[last_open, final],
        timeout=10_000,
    )


def test_switching_symbol_and_interval(dashboard: Dashboard) -> None:
    page, server = dashboard.page, dashboard.server
    # click in the market overview
    page.click("#markets tr[data-symbol='ETHUSDT']")
    eth = dashboard.wait_showing("ETHUSDT", "1s", n=3)
    assert_matches_api(eth, rest_candles(server, "ETHUSDT", "1s"), min_common=2)
    assert page.locator("#symbol-select").input_value() == "ETHUSDT"
    assert page.locator("#markets tr.active").get_attribute("data-symbol") == "ETHUSDT"
    assert page.url.endswith("#ETHUSDT/1s")
    # the symbol menu
    page.select_option("#symbol-select", "SOLUSDT")
    sol = dashboard.wait_showing("SOLUSDT", "1s", n=3)
    assert_matches_api(sol, rest_candles(server, "SOLUSDT", "1s"), min_common=2)
    # the interval buttons: 1m candles, live updates keep coming for the new subscription
    page.click("#interval-group button[data-interval='1m']")
    minute = dashboard.wait_showing("SOLUSDT", "1m", n=1)
    assert all(t % 60_000 == 0 for t in minute["x"])
    assert_matches_api(minute, rest_candles(server, "SOLUSDT", "1m"), min_common=0)
    assert page.locator("#interval-group button.active").inner_text() == "1m"
    last = minute["volume"][-1]
    page.wait_for_function(
        "(v) => { const y = document.getElementById('chart').data[1].y; return y[y.length - 1] !== v; }", arg=last
    )
    # and back to where we started
    page.click("#markets tr[data-symbol='BTCUSDT']")
    page.click("#interval-group button[data-interval='1s']")
    dashboard.wait_showing("BTCUSDT", "1s", n=5)


def test_indicator_functions_match_pandas(dashboard: Dashboard) -> None:
    rng = np.random.default_rng(20261123)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 150)))
    got = dashboard.page.evaluate(
        """async (xs) => {
          const m = await import('/static/indicators.js');
          return { ema: m.ema(xs, 20), bb: m.bollinger(xs, 20, 2), short: m.ema(xs.slice(0, 5), 20) };
        }""",
        close.tolist(),
    )
    np.testing.assert_allclose(as_array(got["ema"]), ema_reference(close, 20), rtol=1e-12, equal_nan=True)
    mid, upper, lower = bollinger_reference(close, 20, 2.0)
    np.testing.assert_allclose(as_array(got["bb"]["middle"]), mid, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(as_array(got["bb"]["upper"]), upper, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(as_array(got["bb"]["lower"]), lower, rtol=1e-12, equal_nan=True)
    assert got["short"] == [None] * 5


def test_chart_replaces_appends_and_fills_holes(dashboard: Dashboard) -> None:
    got = dashboard.page.evaluate(
        """async () => {
          const { CandleChart } = await import('/static/chart.js');
          const el = document.createElement('div');
          el.style.cssText = 'position:fixed;left:0;top:0;width:400px;height:300px;visibility:hidden';
          document.body.appendChild(el);
          const chart = new CandleChart(el);
          const c = (t, close, closed = true) => ({
            open_time: t, open: 1, high: Math.max(1, close), low: Math.min(1, close), close, volume: t / 1000, closed,
          });
          const out = {};
          chart.load('TEST', '1s', [c(3000, 3), c(1000, 1), c(4000, 4, false)]);  // out of order on purpose
          out.loaded = chart.s.x.slice();
          out.hole = chart.firstHole();
          out.replaced = chart.apply(c(4000, 4.5));
          out.appended = chart.apply(c(5000, 5, false));
          out.filled = chart.apply(c(2000, 2));
          out.older = chart.apply(c(0, 9));
          out.x = chart.s.x.slice();
          out.close = chart.s.close.slice();
          out.closed = chart.s.closed.slice();
          out.holeAfter = chart.firstHole();
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          out.drawn = el.querySelectorAll('g.trace.boxes path.box').length;
          window.Plotly.purge(el);
          el.remove();
          return out;
        }"""
    )
    assert got["loaded"] == [1000, 3000, 4000]
    assert got["hole"] == 2000
    assert got["replaced"] is True and got["appended"] is True and got["filled"] is True
    assert got["older"] is False  # older than the first candle shown: ignored
    assert got["x"] == [1000, 2000, 3000, 4000, 5000]
    assert got["close"] == [1, 2, 3, 4.5, 5]
    assert got["closed"] == [True, True, True, True, False]
    assert got["holeAfter"] is None
    assert got["drawn"] == 5


def test_overlays_follow_the_candles_shown_and_toggle(dashboard: Dashboard) -> None:
    page = dashboard.page
    ema_box, bb_box = page.locator("#toggle-ema"), page.locator("#toggle-bb")
    if not ema_box.is_checked():
        page.click("label.chip-ema")
    if not bb_box.is_checked():
        page.click("label.chip-bb")
    snap = dashboard.snapshot()
    close = np.array(snap["close"])
    assert snap["ema"]["visible"] is True and snap["bbUpper"]["visible"] is True
    np.testing.assert_allclose(as_array(snap["ema"]["y"]), ema_reference(close, 20), rtol=1e-12, equal_nan=True)
    mid, upper, lower = bollinger_reference(close, 20, 2.0)
    np.testing.assert_allclose(as_array(snap["bbMiddle"]["y"]), mid, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(as_array(snap["bbUpper"]["y"]), upper, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(as_array(snap["bbLower"]["y"]), lower, rtol=1e-12, equal_nan=True)
    # off again: hidden, and remembered across reloads
    page.click("label.chip-bb")
    assert dashboard.snapshot()["bbUpper"]["visible"] is False
    assert page.evaluate("() => JSON.parse(localStorage.getItem('coincast.overlays'))") == {"ema": True, "bb": False}
    page.click("label.chip-bb")
    assert dashboard.snapshot()["bbUpper"]["visible"] is True


def test_reconnects_after_the_socket_drops(dashboard: Dashboard) -> None:
    page = dashboard.page
    page.evaluate(
        """() => {
          window.e2eStates = [];
          new MutationObserver(() => window.e2eStates.push(document.getElementById('conn').dataset.state))
            .observe(document.getElementById('conn'), { attributes: true, attributeFilter: ['data-state'] });
          window.coincast.live.drop();
        }"""
    )
    page.wait_for_function("() => window.e2eStates.includes('down') && window.coincast.live.connected")
    page.wait_for_selector("#conn[data-state='live']")
    assert page.evaluate("() => window.coincast.live.connects") >= 2
    # subscriptions were restored: candles keep arriving on the new connection
    last_open = dashboard.snapshot()["x"][-1]
    page.wait_for_function(
        "(t) => { const x = document.getElementById('chart').data[0].x; return x[x.length - 1] > t; }",
        arg=last_open,
        timeout=10_000,
    )


def test_theme_toggle_is_remembered(dashboard: Dashboard) -> None:
    page = dashboard.page
    html = page.locator("html")
    assert html.get_attribute("data-theme") == "dark"  # the context prefers dark
    dark_grid = page.evaluate("() => document.getElementById('chart')._fullLayout.yaxis.gridcolor")
    page.click("#theme-toggle")
    assert html.get_attribute("data-theme") == "light"
    page.wait_for_function("(g) => document.getElementById('chart')._fullLayout.yaxis.gridcolor !== g", arg=dark_grid)
    page.reload()
    assert html.get_attribute("data-theme") == "light"
    dashboard.wait_showing("BTCUSDT", "1s", n=5)  # the hash keeps the view across the reload
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_selector("#conn[data-state='live']")
    page.screenshot(path=str(ARTIFACTS / "dashboard-light.png"))
    page.click("#theme-toggle")
    assert html.get_attribute("data-theme") == "dark"
    assert page.evaluate("() => localStorage.getItem('coincast.theme')") == "dark"


def test_screenshot_no_console_errors_and_only_local_traffic(dashboard: Dashboard) -> None:
    page = dashboard.page
    # enough candles for the 20-period overlays to show in the picture
    dashboard.wait_showing("BTCUSDT", "1s", n=22, timeout=30_000)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_function(
        "() => /trades/.test(document.getElementById('st-source').textContent) || "
        "document.getElementById('f-trades').textContent !== '—'"
    )
    # no candle is missing: any that closed while history loaded is fetched again (gap repair)
    page.wait_for_function("() => window.coincast.chart.firstHole() === null", timeout=15_000)
    x = dashboard.snapshot()["x"]
    assert np.all(np.diff(x) == 1000), "1s candles with a hole"
    page.mouse.move(10, 10)  # no hover label in the picture
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000

    assert dashboard.console_errors == []
    hosts = {urlsplit(u).hostname for u in dashboard.urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, sorted(u for u in dashboard.urls if urlsplit(u).hostname != "127.0.0.1")
    assert any(urlsplit(u).scheme == "ws" for u in dashboard.urls), "the page never opened its WebSocket"
    assert any(u.endswith("/static/vendor/plotly.min.js") for u in dashboard.urls)
