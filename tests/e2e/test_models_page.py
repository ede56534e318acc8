"""The Models page and the Market chart's forecast in real headless Chromium against `coincast up`.

The server has an API key, 1 s candles and a small klines file to train on (what
COINCAST_MODELS__TRAIN_DATA points a job at in embedded mode). The test trains a model from the
page and watches its progress arrive over the WebSocket, promotes it through the API-key dialog,
then sees the live forecast cone on the Market chart. Screenshots: artifacts/e2e/models.png,
models-light.png, forecast.png and forecast-light.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ARTIFACTS, Server, running_server
from tests.unit.registry.models_synth import make_klines

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEY = "e2e-models-key"
SYMBOL = "BTCUSDT"

FORECAST = """() => {
  const gd = document.getElementById('chart');
  if (!gd || !gd.data) return null;
  const t = gd.data.find((d) => d.name === 'Forecast');
  const up = gd.data.find((d) => d.name === 'Forecast upper');
  const lo = gd.data.find((d) => d.name === 'Forecast lower');
  if (!t || !t.visible || t.x.length !== 2) return null;
  const notes = (gd.layout.annotations || []).map((a) => a.text);
  return {x: Array.from(t.x), y: Array.from(t.y), upper: Array.from(up.y), lower: Array.from(lo.y),
          fill: up.fill, notes, candles: Array.from(gd.data[0].x)};
}"""


@dataclass
class Browser:
    page: Any
    console_errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    training_frames: list[dict[str, Any]] = field(default_factory=list)

    def on_ws(self, ws: Any) -> None:
        self.urls.append(ws.url)

        def frame(payload: Any) -> None:
            if isinstance(payload, str) and '"training"' in payload:
                self.training_frames.append(json.loads(payload))

        ws.on("framereceived", frame)


@pytest.fixture(scope="module")
def models_server(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`coincast up --source sim` with an API key and a 400-bar 1 s klines file to train on."""
    root = tmp_path_factory.mktemp("coincast-models-e2e")
    train_file = root / "klines_1s.parquet"
    make_klines(400, step_ms=1000, seed=11, vol=0.0005, symbols=(SYMBOL,)).to_parquet(train_file)
    env = {
        "COINCAST_SYMBOLS": "BTCUSDT,ETHUSDT",
        "COINCAST_API__API_KEY": KEY,
        "COINCAST_MODELS__TRAIN_DATA": str(train_file),
        "COINCAST_MODELS__VALIDATION_FOLDS": "3",
        "COINCAST_MODELS__RELOAD_POLL_MS": "200",
        "COINCAST_MODELS__SCORE_EVERY_MS": "300",
        "COINCAST_MODELS__RETRAIN_EVERY": "off",
    }
    with running_server(root, env) as srv:
        yield srv


@pytest.fixture(scope="module")
def tab(models_server: Server, browser: Any) -> Iterator[Browser]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(20_000)
    b = Browser(page)
    page.on("console", lambda m: m.type == "error" and b.console_errors.append(f"console: {m.text} {m.location}"))
    page.on("pageerror", lambda e: b.console_errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: b.urls.append(r.url))
    page.on("websocket", b.on_ws)
    try:
        yield b
    finally:
        context.close()


def test_train_promote_and_see_the_forecast(tab: Browser, models_server: Server) -> None:
    page, server = tab.page, models_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server.url}/#/models")
    assert page.locator("#page-models").is_visible() and page.locator("#page-market").is_hidden()
    assert page.locator(".nav-link[data-page='models']").get_attribute("aria-current") == "page"
    page.wait_for_selector("#mdl-symbol option[value='BTCUSDT']", state="attached")
    page.wait_for_selector("#mdl-registry td.mdl-empty")  # nothing trained yet
    assert "No model is live" in page.locator("#mdl-live").inner_text()
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'live'")

    form = page.locator("#mdl-train")
    form.locator("#mdl-symbol").select_option(SYMBOL)
    form.locator("#mdl-horizon").select_option("1s")
    form.locator("#mdl-model").select_option("drift")
    form.locator("#mdl-promote").select_option("never")

    # a wrong key gets a clear error and starts nothing
    form.locator("#mdl-key").fill("not-the-key")
    page.click("#mdl-train-btn")
    page.wait_for_function(
        "() => /API key refused \\(403\\)/.test(document.getElementById('mdl-form-msg').textContent)"
    )
    assert "invalid API key" in page.locator("#mdl-form-msg").inner_text()
    assert server.get("/api/v1/train")["jobs"] == []
    assert "No training jobs" in page.locator("#mdl-jobs").inner_text()

    # a job that fails (no ETHUSDT bars in the training file) reports its error
    form.locator("#mdl-key").fill(KEY)
    form.locator("#mdl-symbol").select_option("ETHUSDT")
    page.click("#mdl-train-btn")
    page.wait_for_selector("#mdl-job[data-status='failed']", timeout=30_000)
    error = page.locator("#mdl-job-error")
    assert error.is_visible() and "ETHUSDT" in error.inner_text()
    assert page.locator("#mdl-job-metrics").is_hidden()
    page.wait_for_selector("#mdl-jobs tr[data-job] .mdl-pill.failed")

    form.locator("#mdl-symbol").select_option(SYMBOL)
    page.click("#mdl-train-btn")
    page.wait_for_selector("#mdl-job[data-status='succeeded']", timeout=60_000)
    job_id = page.locator("#mdl-job-title .mono").inner_text()
    page.wait_for_selector(f"#mdl-jobs tr[data-job='{job_id}'].current .mdl-pill.succeeded")
    status = server.get(f"/api/v1/train/{job_id}")
    assert status["status"] == "succeeded" and not status["promoted"]
    model_id = status["model_id"]

    # the progress events came over the page's WebSocket, in order, then the metrics, then done
    page.wait_for_function("(id) => (window.coincast.models.events.get(id) || new Map()).size >= 6", arg=job_id)
    frames = [f for f in tab.training_frames if f["job_id"] == job_id]
    assert [f["event"] for f in frames] == ["epoch"] * 4 + ["metrics", "done"]  # 3 windows + final fit
    assert [f["seq"] for f in frames] == list(range(1, 7))
    assert [f["progress"] for f in frames[:4]] == sorted(f["progress"] for f in frames[:4])
    # ... and the page drew them: the loss curve, 100 %, the evaluation metrics and the result
    loss = page.evaluate("() => document.getElementById('mdl-loss').data.map((t) => Array.from(t.y))")
    assert loss[0] == pytest.approx([f["loss"] for f in frames[:4]])
    assert loss[1][:3] == pytest.approx([f["val_loss"] for f in frames[:3]])
    assert page.locator("#mdl-job-pct").inner_text() == "100 %"
    metrics = page.locator("#mdl-job-metrics")
    assert metrics.is_visible() and "MASE" in metrics.inner_text() and "Coverage" in metrics.inner_text()
    assert "After costs" in metrics.inner_text() and "DM p MSE" in metrics.inner_text()
    assert model_id in page.locator("#mdl-job-result").inner_text()

    # the registry lists the new version and the leaderboard ranks it against persistence
    row = page.locator(f"#mdl-registry tr[data-id='{model_id}']")
    row.wait_for()
    assert "drift" in row.inner_text() and row.locator(".mdl-badge.live").count() == 0
    board = page.locator("#mdl-board")
    assert "BTCUSDT 1s" in board.inner_text() and "persistence" in board.inner_text()
    # beside MASE: the after-cost table (vs buy-and-hold) and the calibration table of the trained model
    cost = board.locator("table.mdl-cost")
    assert "Buy & hold" in cost.inner_text() and "Break-even" in cost.inner_text() and "drift" in cost.inner_text()
    calib = board.locator("table.mdl-calib")
    assert all(f"{lv} %" in calib.inner_text() for lv in (50, 80, 90, 95)) and "drift" in calib.inner_text()

    # promote: the key is asked once in a dialog (forget the one the form stored first)
    page.evaluate("() => sessionStorage.clear()")
    form.locator("#mdl-key").fill("")
    asked: list[str] = []  # a model that trails persistence is promoted only after a confirmation
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    row.locator("button[data-promote]").click()
    dialog = page.locator("#mdl-key-dialog")
    dialog.wait_for(state="visible")
    page.fill("#mdl-key-input", KEY)
    page.click("#mdl-key-ok")
    page.wait_for_function("() => document.getElementById('mdl-notice').textContent.startsWith('Promoted')")
    assert page.evaluate("() => sessionStorage.getItem('coincast.apiKey')") == KEY
    mase = next(v for v in server.get("/api/v1/models")["models"] if v["id"] == model_id)["metrics"]["mase"]
    assert (mase >= 1) == bool(asked), (mase, asked)
    assert all("trails persistence" in m and f"{mase:.3f}" in m for m in asked)
    row.locator(".mdl-badge.live").wait_for()
    assert server.get("/api/v1/models")["live"] == {f"{SYMBOL}/1s": model_id}
    # the live table shows the promoted model serving, with forecasts (and scores once due)
    page.wait_for_function(
        "() => /serving/.test(document.querySelector('#mdl-live tr[data-slot=\"BTCUSDT/1s\"]')?.textContent || '')",
        timeout=20_000,
    )
    page.wait_for_function(
        "() => /n=\\d+/.test(document.querySelector('#mdl-live tr[data-slot=\"BTCUSDT/1s\"]')?.textContent || '')",
        timeout=20_000,
    )
    page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)

    # the Market chart draws the live forecast cone, labelled, at its target
    page.evaluate("() => { location.hash = '#BTCUSDT/1s'; }")
    page.wait_for_function(
        f"() => ({FORECAST})() !== null && document.getElementById('forecast-strip').dataset.state === 'live'"
    )
    cone = page.evaluate(FORECAST)
    latest = server.get(f"/api/v1/predictions/{SYMBOL}", horizon="1s", limit=5)
    assert latest["serving"] and latest["model"]["model_id"] == model_id
    assert cone["fill"] == "tonexty"
    assert cone["lower"][1] < cone["y"][1] < cone["upper"][1]
    assert cone["x"][1] - cone["x"][0] == 1000 and cone["x"][0] in cone["candles"]
    assert "drift 1s · 90 %" in cone["notes"]
    # the track record follows the scores (asked again a few seconds after new forecasts)
    page.wait_for_function("() => /MASE/.test(document.getElementById('forecast-strip').textContent)")
    strip = page.locator("#forecast-strip").inner_text()
    assert "drift 1s · 90 %" in strip and "MASE" in strip and "Coverage" in strip and "model age" in strip
    page.screenshot(path=str(ARTIFACTS / "forecast.png"))

    # the light theme
    page.click("#theme-toggle")
    page.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
    # the chart re-read its colours and rendered them (no frame pending)
    page.wait_for_function("() => window.coincast.chart.colors.panel === '#ffffff' && !window.coincast.chart.frame")
    page.screenshot(path=str(ARTIFACTS / "forecast-light.png"))
    page.evaluate("() => { location.hash = '#/models'; }")
    page.wait_for_selector("#page-models:not([hidden])")
    page.screenshot(path=str(ARTIFACTS / "models-light.png"), full_page=True)

    # Chromium logs every non-2xx response; the one 403 is the wrong key sent on purpose above
    deliberate = [e for e in tab.console_errors if "status of 403" in e and "/api/v1/train" in e]
    assert len(deliberate) == 1, tab.console_errors
    assert not [e for e in tab.console_errors if e not in deliberate], tab.console_errors
    hosts = {urlsplit(u).hostname for u in tab.urls}
    assert hosts == {"127.0.0.1"}, sorted(u for u in tab.urls if urlsplit(u).hostname != "127.0.0.1")


def test_no_live_model_and_expired_model_draw_nothing(models_server: Server, browser: Any) -> None:
    """ETHUSDT has no live model: the strip says so, no cone. Then a model that expires: the strip says why."""
    from coincast.domain import Interval
    from coincast.jobs.train import TrainRequest, train_model
    from coincast.registry.files import FileModelRegistry

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{models_server.url}/#ETHUSDT/1s")
        page.wait_for_function(
            "() => /No model is live for ETHUSDT/.test(document.getElementById('forecast-strip').textContent)"
        )
        page.wait_for_function("() => document.getElementById('chart').data !== undefined")
        assert page.evaluate(FORECAST) is None

        # promoted from another process (as `coincast models promote` does); the server hot-reloads it
        registry = FileModelRegistry(models_server.log.parent / "data" / "models")
        klines = make_klines(400, step_ms=1000, seed=5, vol=0.0005, symbols=("ETHUSDT",))
        request = TrainRequest("ETHUSDT", Interval.S1, "persistence", folds=2, promote="always", expiry_ms=4000)
        model_id = train_model(request, klines, registry, lambda e, f: None).version.id
        page.wait_for_function(
            "() => /expired: model /.test(document.getElementById('forecast-strip').textContent)", timeout=20_000
        )
        strip = page.locator("#forecast-strip")
        assert strip.get_attribute("data-state") == "off"
        assert model_id in strip.inner_text() and "retrain" in strip.inner_text()
        assert page.evaluate(FORECAST) is None
        assert not errors
    finally:
        context.close()
