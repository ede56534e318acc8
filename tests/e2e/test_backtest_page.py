"""The Backtest page in headless Chromium against `coincast up --source sim`.

A predictions file (a seeded random walk, a model right 60 % of the time and persistence) is
written under <data_dir>/backtests; the page must list it, run it, agree with the API, draw the
equity and drawdown in both themes without console errors, and say why live forecasts cannot be
backtested yet. Screenshots: artifacts/e2e/backtest.png (dark) and backtest-light.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import ARTIFACTS, Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def write_predictions(data_dir: Path, n: int = 400, name: str = "demo_preds") -> Path:
    rng = np.random.default_rng(11)
    prices = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.006, n + 1)))
    t = pd.date_range("2024-03-01", periods=n + 1, freq="h", tz="UTC")
    move = prices[1:] / prices[:-1] - 1
    right = rng.uniform(size=n) < 0.6
    guess = np.where(right, np.sign(move), -np.sign(move)) * 0.002
    base = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "horizon": "1h",
            "origin_time": t[:-1],
            "target_time": t[1:],
            "origin_price": prices[:-1],
            "actual_price": prices[1:],
            "window": 0,
        }
    )
    frame = pd.concat([
        base.assign(model="persistence", predicted_price=prices[:-1], prob_up=0.5),
        base.assign(model="oracle60", predicted_price=prices[:-1] * (1 + guess), prob_up=0.5 + guess * 100),
    ], ignore_index=True)  # fmt: skip
    frame["lower"] = frame["predicted_price"] * 0.99
    frame["upper"] = frame["predicted_price"] * 1.01
    path = data_dir / "backtests" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def page(server: Server, browser: Any) -> Iterator[tuple[Any, list[str]]]:
    write_predictions(server.log.parent / "data")
    context = browser.new_context(viewport={"width": 1440, "height": 1500}, color_scheme="dark")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text} {m.location}"))
    pg.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    pg.goto(f"{server.url}/#/backtest")
    try:
        yield pg, errors
    finally:
        context.close()


def test_run_a_predictions_file(page: tuple[Any, list[str]], server: Server) -> None:
    pg, errors = page
    assert pg.locator("#page-backtest").is_visible() and pg.locator("#page-market").is_hidden()
    assert pg.locator(".nav-link[data-page='backtest']").get_attribute("aria-current") == "page"
    pg.wait_for_function("document.querySelector('#bt-source').value === 'backtests/demo_preds.parquet'")
    pg.select_option("#bt-strategy", "long_short")
    pg.fill("#bt-fee", "10")
    pg.fill("#bt-slip", "5")
    pg.click("#bt-run")
    pg.wait_for_function("document.querySelectorAll('#bt-metrics tbody tr.bt-pick').length === 2")
    api = httpx.post(server.url + "/api/v1/backtest", json={
        "path": "backtests/demo_preds.parquet", "strategy": "long_short", "fee_bps": 10, "slippage_bps": 5,
    }, timeout=10).json()  # fmt: skip
    oracle = next(r for r in api["results"] if r["model"] == "oracle60")
    rows = pg.eval_on_selector_all(
        "#bt-metrics tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))"
    )
    assert rows[0][1] == "buy and hold" and rows[1][1].startswith("oracle60")
    shown_return = float(rows[1][2].replace("−", "-").replace("+", "").rstrip("%"))
    assert shown_return == pytest.approx(oracle["metrics"]["total_return"] * 100, abs=0.006)
    assert rows[2][1].startswith("persistence") and rows[2][2] == "0.00%"
    # the selected series (oracle60) is drawn: strategy, buy and hold, the zero line; and its drawdown
    drawn = pg.evaluate("""() => ['bt-equity', 'bt-drawdown'].map((id) => {
        const gd = document.getElementById(id); return gd.data ? gd.data.map((t) => [t.name, t.y.length]) : null; })""")
    n = len(oracle["equity"]["time"])
    assert drawn[0] == [["strategy", n], ["buy and hold", n], ["flat (persistence)", n]]
    assert drawn[1] == [["strategy", n], ["buy and hold", n]]
    assert pg.locator("#bt-equity .main-svg").count() >= 1
    assert pg.locator("#bt-trades tbody tr").count() == min(200, oracle["trades_total"])
    pg.screenshot(path=str(ARTIFACTS / "backtest.png"), full_page=True)
    # the persistence row: no trade, said in words
    pg.click("#bt-metrics tbody tr.bt-pick[data-i='1']")
    assert "stayed flat" in pg.locator("#bt-trades tbody").inner_text()
    pg.click("#bt-metrics tbody tr.bt-pick[data-i='0']")
    pg.click("#theme-toggle")
    pg.wait_for_function("document.documentElement.dataset.theme === 'light'")
    bg = pg.evaluate(
        "() => document.querySelector('#bt-equity .main-svg').style.background || "
        "getComputedStyle(document.querySelector('#bt-equity .bg')).fill"
    )
    assert bg and "16, 22, 29" not in bg  # not the dark panel any more
    pg.screenshot(path=str(ARTIFACTS / "backtest-light.png"), full_page=True)
    pg.click("#theme-toggle")
    assert errors == []


def test_live_source_without_forecasts_explains(page: tuple[Any, list[str]], server: Server) -> None:
    pg, errors = page
    pg.select_option("#bt-source", "__live__")
    assert pg.locator("#bt-model").is_visible()
    # every streamed interval is offered; no model is registered, so the page says what to do
    horizons = pg.eval_on_selector_all("#bt-horizon option", "os => os.map(o => o.value)")
    assert horizons == server.get("/api/v1/symbols")["intervals"]
    pg.select_option("#bt-horizon", "1m")
    pg.wait_for_function("document.querySelector('#bt-model').options[0].text.includes('1m')")
    assert pg.locator("#bt-model").input_value() == ""
    pg.click("#bt-run")
    pg.wait_for_function("document.querySelector('#bt-status').textContent.startsWith('No 1m model')")
    assert pg.locator("#bt-status").inner_text() == (
        "No 1m model of BTCUSDT to backtest: train one on the Models page.")
    assert pg.get_attribute("#bt-status", "data-kind") == "warn"
    assert [e for e in errors if "409" not in e] == []


def test_a_short_sample_carries_a_warning_and_no_annualised_figures(
    page: tuple[Any, list[str]], server: Server
) -> None:
    pg, errors = page
    write_predictions(server.log.parent / "data", n=12, name="short_preds")
    pg.reload()
    pg.wait_for_selector("#bt-source option[value='backtests/short_preds.parquet']", state="attached")
    pg.select_option("#bt-source", "backtests/short_preds.parquet")
    pg.click("#bt-run")
    pg.wait_for_function("!document.querySelector('#bt-warn').hidden")
    assert pg.locator("#bt-warn").inner_text().startswith("Short sample: 12 periods.")
    heads = pg.eval_on_selector_all("#bt-metrics thead th", "ths => ths.map(t => t.innerText.trim())")
    cells = pg.eval_on_selector_all("#bt-metrics tbody tr.bt-pick >> nth=0 >> td",
                                    "tds => tds.map(t => [t.innerText.trim(), t.className])")
    row = dict(zip(heads, cells, strict=True))
    assert row["Sharpe"] == ["—", ""] and row["Annual"] == ["—", ""] and row["Volatility"] == ["—", ""]
    assert row["Return"][1] == ""  # not coloured green or red from twelve periods
    pg.screenshot(path=str(ARTIFACTS / "backtest-short.png"))
    assert [e for e in errors if "409" not in e] == []
